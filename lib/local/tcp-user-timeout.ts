import { createRequire } from 'node:module';
import { Socket } from 'node:net';

// TCP_USER_TIMEOUT (Linux, RFC 5482): how long written data may stay unacknowledged before the
// kernel gives up on the connection and reports ETIMEDOUT. Without it a peer that vanished
// without FIN or RST (power loss, a pulled cable, a NAT or Wi-Fi drop) is given up only after
// the retransmissions run out (`net.ipv4.tcp_retries2`, about 15 minutes), and keepalive
// probes never start while data is outstanding. Node has no setsockopt: the maintained
// package net-keepalive calls it through ffi-rs. It is loaded on first use, not at import, so
// that a platform without its native part still runs everything else.

type SetUserTimeout = (socket: Socket, ms: number) => boolean;

let loaded: { set: SetUserTimeout } | { why: string } | undefined;

function load(): { set: SetUserTimeout } | { why: string } {
  if (loaded !== undefined) return loaded;
  // net-keepalive also knows macOS, where the option counts seconds (TCP_RXT_CONNDROPTIME): Linux only.
  if (process.platform !== 'linux') {
    loaded = { why: `TCP_USER_TIMEOUT is a Linux socket option (this is ${process.platform})` };
    return loaded;
  }
  try {
    const module = createRequire(import.meta.url)('net-keepalive') as { setUserTimeout: SetUserTimeout };
    loaded = { set: module.setUserTimeout };
  } catch (err) {
    loaded = { why: `net-keepalive could not be loaded: ${err instanceof Error ? err.message : String(err)}` };
  }
  return loaded;
}

/** Why TCP_USER_TIMEOUT cannot be set in this process, or undefined when it can. Loads the native part once. */
export function userTimeoutUnavailable(): string | undefined {
  const l = load();
  return 'why' in l ? l.why : undefined;
}

/**
 * Sets TCP_USER_TIMEOUT on the socket (or, for an HTTP/2 or TLS stream, the TCP socket under
 * it: Node's socket objects expose that descriptor). Answers false where it cannot be set:
 * another platform, the native part missing, or a socket already closed.
 */
export function setUserTimeout(socket: Socket, ms: number): boolean {
  const l = load();
  if ('why' in l) return false;
  try {
    return l.set(socket, ms);
  } catch {
    // The socket closed under us (no descriptor any more): its 'close' is on its way.
    return false;
  }
}

/**
 * Sets TCP_USER_TIMEOUT on a listening socket's native handle (`net.Server#_handle`), whose
 * accepted connections inherit it. net-keepalive takes sockets only: a Socket object around
 * the handle, for its descriptor.
 */
export function setListenerUserTimeout(handle: object, ms: number): boolean {
  const asSocket = Object.create(Socket.prototype) as Socket & { _handle: object };
  asSocket._handle = handle;
  return setUserTimeout(asSocket, ms);
}
