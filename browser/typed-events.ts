import type { SseCloseTrigger } from './close-trigger.js';

/** Event name → payload type, shared with the server (`ssePlugin<Events>`); an interface fits too. Untyped: any name, `unknown`. */
export type SseEventMap = Record<string, unknown>;

/**
 * An event as listeners get it, with its payload: `data` parsed as JSON once, on first read
 * (the text itself when it is not JSON; `sse-change-active`'s object as is). Every event the
 * client delivers has `payload`; the type says what the server promised to send.
 */
export interface SseMessage<T = unknown> extends MessageEvent<string> {
  readonly payload: T;
}

/** A listener of one event whose payload is `T`. */
export type SseTypedListener<T> = {
  listener(this: unknown, event: SseMessage<T>, closeInfo?: SseCloseTrigger): void;
}['listener'];

/** Listeners by name of `Events`, each getting that event's payload type. */
export type SseTypedListeners<Events extends object> = {
  [K in keyof Events & string]?: SseTypedListener<Events[K]> | readonly SseTypedListener<Events[K]>[] | null;
};

/** @internal Gives `message` its lazily parsed `payload`. */
export function addPayload(message: MessageEvent, parse: (text: string) => unknown): void {
  let parsed = false;
  let value: unknown;
  Object.defineProperty(message, 'payload', {
    configurable: true,
    get(): unknown {
      if (!parsed) {
        parsed = true;
        const data: unknown = message.data;
        try {
          value = typeof data === 'string' ? parse(data) : data;
        } catch {
          value = data;
        }
      }
      return value;
    },
  });
}
