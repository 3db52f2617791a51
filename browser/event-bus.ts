/** The `detail` of an event forwarded to `window` (0.1's shape, kept beside `data` and `url`). */
export interface SseWindowEventDetail {
  data: unknown;
  lastEventId: string;
  /** The system (base path) it came from. */
  url: string;
}

/** An event forwarded to `window` by the window event bus. */
export type SseWindowEvent<T = string> = MessageEvent<T> & { readonly url: string; readonly detail: SseWindowEventDetail };

/**
 * Forwards an event to `window` as a `MessageEvent` of the same type (the Java client's
 * window event bus), with `url` set to the system's url, the own fields of the original
 * (`whoTriggerClose`, `closeReason` of a `connect-close`) copied, and 0.1's `detail`.
 */
export function dispatchOnWindow(win: Pick<Window, 'dispatchEvent'> | undefined, event: MessageEvent, url: string): void {
  if (win === undefined) return;
  const forwarded = new MessageEvent(event.type, { data: event.data as unknown, lastEventId: event.lastEventId, origin: event.origin });
  const detail: SseWindowEventDetail = { data: event.data as unknown, lastEventId: event.lastEventId, url };
  const own: PropertyDescriptorMap = {};
  // Own fields the client added (`isTrusted` is an own field of every event: the new one has its own).
  for (const key of Object.keys(event)) {
    if (!(key in forwarded)) own[key] = { value: (event as unknown as Record<string, unknown>)[key], enumerable: true };
  }
  Object.defineProperties(forwarded, { ...own, url: { value: url, enumerable: true }, detail: { value: detail, enumerable: true } });
  win.dispatchEvent(forwarded);
}
