import type { SendTargetKind, TargetRef } from '../core/targets.js';
import type { Connection } from '../local/connection.js';
import { queueRefFor } from './target-refs.js';

/**
 * The one rule for clients that cannot acknowledge (they connected without `ack=1`, e.g. a
 * plain EventSource): a queued message counts as delivered once it is written to them. Every
 * source of durable messages (a live send, a replay from this node's store, a message pulled
 * from or forwarded by a peer) asks this function. Returns the queue of `conn` to remove the
 * message from, or undefined when the client acknowledges by itself or the message was not
 * queued for it (a tenant, channel or "all" message is a retained log, never acknowledged).
 */
export function ackedByWrite(conn: Connection, kind: SendTargetKind): TargetRef | undefined {
  return conn.client.ack ? undefined : queueRefFor(conn, kind);
}
