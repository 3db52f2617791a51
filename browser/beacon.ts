/**
 * Tells the server a connection is over (`POST {url}/connect/disconnect.do`, form data), by
 * `sendBeacon` so that it also leaves an unloading page; by a keepalive fetch where beacons
 * are unavailable or refused.
 */
export function sendCloseBeacon(url: string, fields: Record<string, string>, credentials: RequestCredentials): void {
  const target = `${url}/connect/disconnect.do`;
  const body = new URLSearchParams(fields);
  let sent = false;
  try {
    sent = typeof navigator !== 'undefined' && typeof navigator.sendBeacon === 'function' && navigator.sendBeacon(target, body);
  } catch {
    // fall back to fetch below
  }
  if (!sent) fetch(target, { method: 'POST', body, keepalive: true, credentials }).catch(() => undefined);
}
