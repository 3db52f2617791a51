import type { Connection } from './connection.js';

/**
 * The browser a stream comes from, for the `clientIdMaxConnections` cap: user (else token) +
 * clientId + domain + tenant, as one string that crosses the wire to peers unchanged.
 * Undefined when the stream has no identity to share.
 */
export function clientKeyOf(conn: Connection): string | undefined {
  const clientId = conn.client.clientId;
  // Fully anonymous clients share no identity: a known clientId must not let one evict another.
  if (clientId === undefined || (conn.userId === undefined && conn.accessToken === undefined)) return undefined;
  return JSON.stringify([conn.userId ?? conn.accessToken ?? null, clientId, conn.request.domain, conn.tenantId ?? null]);
}
