import type { Socket } from 'node:net';
import { setListenerUserTimeout, setUserTimeout } from './tcp-user-timeout.js';

/** A listening socket's native handle, as Node keeps it on `net.Server#_handle` (a TCPWrap). */
interface ListenerHandle {
  fd?: number;
  setKeepAlive?: (enable: boolean, delaySeconds: number) => number;
}

/** Listening sockets given the stream options, with the user timeout (0: none), and when (performance.now()). */
const listeners = new WeakMap<ListenerHandle, { userTimeoutMs: number; since: number }>();

/**
 * Connections established before the listener had the options, but accepted after, did not
 * inherit them: until this long after they were set, each stream is still given them itself.
 * The accept queue drains within milliseconds unless the event loop is blocked that long.
 */
export const LISTENER_GRACE_MS = 2000;

/**
 * Readies a stream's socket: no Nagle delay, no idle timeout, TCP keepalive, and
 * TCP_USER_TIMEOUT when `userTimeoutMs` > 0 (heartbeats keep data outstanding, so keepalive
 * never probes a browser that vanished: the kernel gives up on unacknowledged data after that
 * long instead, ETIMEDOUT, then 'close').
 *
 * Linux copies a listening socket's options to every connection it accepts, so keepalive and
 * the user timeout are set once on the listener (known when Node accepted the socket itself:
 * `socket.server._handle`), and streams accepted later have them without a setsockopt of their
 * own: per stream those cost two system calls for keepalive (~2 µs of a connect's CPU) and,
 * through ffi-rs, about 40 µs for the user timeout. Where the listener is not reachable (a
 * worker of node:cluster in round-robin mode, HTTP/2), or holds another user timeout (two hubs
 * with different ones on one server), the socket gets them itself.
 *
 * (Node's socket does not know that it inherited keepalive: a later `setKeepAlive(false)` by
 * an app is a no-op for it. Nothing of the library does that.)
 */
export function prepareStreamSocket(socket: Socket, userTimeoutMs: number): void {
  // Node's HTTP server has set TCP_NODELAY on accept (`noDelay` defaults to true): no system call then.
  socket.setNoDelay(true);
  socket.setTimeout(0);
  const handle = (socket as Socket & { server?: { _handle?: ListenerHandle | null } }).server?._handle;
  let known: { userTimeoutMs: number; since: number } | undefined;
  if (handle != null && typeof handle.fd === 'number' && handle.fd >= 0) {
    known = listeners.get(handle);
    if (known === undefined) {
      if (setOnListener(handle, userTimeoutMs)) listeners.set(handle, { userTimeoutMs, since: performance.now() });
    } else if (known.userTimeoutMs === userTimeoutMs && performance.now() - known.since > LISTENER_GRACE_MS) {
      return;
    }
  }
  socket.setKeepAlive(true);
  // A listener may have given this socket another hub's user timeout: 0 undoes it.
  if (userTimeoutMs > 0 || known !== undefined) setUserTimeout(socket, userTimeoutMs);
}

/** Keepalive and the user timeout on the listener; false when either could not be set. */
function setOnListener(handle: ListenerHandle, userTimeoutMs: number): boolean {
  if (typeof handle.setKeepAlive !== 'function') return false;
  // As Socket#setKeepAlive(true) does: SO_KEEPALIVE, and TCP_KEEPIDLE 0, which the kernel refuses
  // (the system's idle time stays): the error code says only that.
  handle.setKeepAlive(true, 0);
  return userTimeoutMs === 0 || setListenerUserTimeout(handle, userTimeoutMs);
}
