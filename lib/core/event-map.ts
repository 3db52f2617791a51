/**
 * A map of event names to payload types, shared by the server and the page:
 *
 * ```ts
 * export interface Events { bell: { count: number }; 'ticket-closed': { id: string } }
 * const plugin = ssePlugin<Events>('/sse/hr', options);
 * await plugin.hub.sendByUserId(7, 'bell', { count: 3 }); // checked: name and payload
 * ```
 *
 * An interface or a type alias; `any` in the index keeps interfaces (which have no index
 * signature) acceptable. The default, `Record<string, unknown>`, takes any name and payload.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventMap = Record<string, any>;

/** The event names of a map (its string keys). */
export type EventName<Events extends EventMap> = keyof Events & string;

/**
 * The arguments after the event name of a `send*` call: the payload (optional when the map
 * allows `undefined`, as the untyped default does), then the options.
 */
export type SendArgs<Data, Options> = undefined extends Data ? [data?: Data, options?: Options] : [data: Data, options?: Options];

/**
 * Types `ctx.sse` for the whole app: register your event map once, by module augmentation,
 * and every `ctx.sse.send*` call is checked against it.
 *
 * ```ts
 * declare module 'koa-sse-server' {
 *   interface SseEventRegistry { events: Events }
 * }
 * ctx.sse.sendByUserId(7, 'bell', { count: 3 }); // checked
 * ```
 *
 * Empty by default: `ctx.sse` then takes any name and payload. With several plugins of
 * different maps, register the primary one and use `typedHub<Events>(ctx)` or `plugin.hub`
 * for the others.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface SseEventRegistry {}

/** The map registered in {@link SseEventRegistry}, else the untyped default. */
export type RegisteredEvents = SseEventRegistry extends { events: infer E extends EventMap } ? E : Record<string, unknown>;
