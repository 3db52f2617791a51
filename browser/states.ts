/**
 * Where the client is, by name (0.1's `state`, now {@link Sse.stateName}):
 * - `idle`: created with `autoConnect: false`, `connect()` not called yet;
 * - `connecting`: a connect is in flight or a reconnect is scheduled;
 * - `open`: `connect-finish` received, requests go out at once;
 * - `closed`: no stream (closed by `close()`, by the server with `reconnect: false`, or a hidden tab);
 * - `destroyed`: `destroy()` was called; final.
 */
export type SseStateName = 'idle' | 'connecting' | 'open' | 'closed' | 'destroyed';

/** @deprecated Since 0.2 `state` is numeric ({@link SseReadyState}); this is {@link SseStateName}. */
export type SseState = SseStateName;

/** The numeric state of the Java client and of `EventSource.readyState`: 0 connecting, 1 open, 2 closed. */
export type SseReadyState = 0 | 1 | 2;

export const STATE_CONNECTING = 0;
export const STATE_OPEN = 1;
export const STATE_CLOSED = 2;

/** The numeric state of a named one: only `connecting` and `open` are not "closed". */
export function readyStateOf(name: SseStateName): SseReadyState {
  return name === 'connecting' ? STATE_CONNECTING : name === 'open' ? STATE_OPEN : STATE_CLOSED;
}
