/** The `detail` of an event forwarded to `window` by the window event bus. */
export interface SseWindowEventDetail {
  data: string;
  lastEventId: string;
  /** The system (base path) it came from. */
  url: string;
}

/**
 * Forwards an event to `window` as a `CustomEvent` of the same name. For pages written for
 * the Java client, the event also has `data`, `lastEventId` and `url` properties.
 */
export function dispatchOnWindow(event: MessageEvent<string>, url: string): void {
  if (typeof window === 'undefined') return;
  const detail: SseWindowEventDetail = { data: event.data, lastEventId: event.lastEventId, url };
  const forwarded = new CustomEvent<SseWindowEventDetail>(event.type, { detail });
  Object.defineProperties(forwarded, {
    data: { value: detail.data, enumerable: true },
    lastEventId: { value: detail.lastEventId, enumerable: true },
    url: { value: url, enumerable: true },
  });
  window.dispatchEvent(forwarded);
}
