import type { SseListenerInput } from './listeners.js';
import type { SseOptions } from './options.js';
import Sse, { type SseConnection } from './sse.js';
import type { SseTypedListeners } from './typed-events.js';

/**
 * Connects to the system at `url` with these listeners and resolves once connected
 * (`connect-finish` received). In a hidden tab that is when the tab is first shown.
 *
 * Not the loader function of the Java README's `index.html` (which resolves at once to
 * `new module.default({url, eventListeners, query})`): this one waits for the connection
 * and takes any other option.
 *
 * @param url the plugin's base path, e.g. `/sse/hr`
 * @param listeners listeners by event name (see {@link SseOptions.eventListeners})
 * @param query extra parameters on every request, e.g. `{ 'access-token': token }`
 * @param options any other {@link SseOptions}
 *
 * With an `Events` map (event name → payload type, the one given to `ssePlugin<Events>`),
 * each listener gets its event's `payload` typed, and names outside the map are refused by the
 * compiler.
 *
 * @example
 * const { sseEventListener } = await import('/sse/hr/sse.js');
 * const conn = await sseEventListener('/sse/hr', { bell: (e) => show(JSON.parse(e.data)) });
 * const answer = await conn.sendJson('read-all', { ids: [1, 2] });
 *
 * @example
 * type Events = { bell: { count: number } };
 * const conn = await sseEventListener<Events>('/sse/hr', { bell: (e) => badge(e.payload.count) });
 */
export function sseEventListener<Events extends object>(
  url: string,
  listeners: SseTypedListeners<Events>,
  query?: SseOptions['query'],
  options?: Omit<SseOptions, 'url' | 'eventListeners' | 'query'>,
): Promise<SseConnection<Events>>;
export function sseEventListener(
  url: string,
  listeners?: SseListenerInput | readonly string[],
  query?: SseOptions['query'],
  options?: Omit<SseOptions, 'url' | 'eventListeners' | 'query'>,
): Promise<SseConnection>;
export function sseEventListener(
  url: string,
  listeners: SseListenerInput | readonly string[] = {},
  query?: SseOptions['query'],
  options: Omit<SseOptions, 'url' | 'eventListeners' | 'query'> = {},
): Promise<SseConnection> {
  try {
    return new Sse({ ...options, url, eventListeners: listeners, query }).ready();
  } catch (err) {
    return Promise.reject(err);
  }
}
