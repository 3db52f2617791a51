import { SseBadRequestError } from '../core/errors.js';
import { isMessageId } from '../qos/message-id.js';
import type { UserCall } from './call.js';
import { ok } from './endpoint.js';

const MAX_IDS = 1000;

/**
 * `POST {base}/connect/ack.do` with `{connectionId, ids: [...]}`: the client has processed
 * these durable messages. Only the caller's own connection may ack, and an ack only ever
 * removes entries of that connection's user and token: someone else's id does nothing.
 */
export async function ack(call: UserCall): Promise<void> {
  const body = await call.json();
  const ids = body.ids;
  if (!Array.isArray(ids) || ids.length > MAX_IDS || !ids.every(isMessageId)) {
    throw new SseBadRequestError(`ids must be an array of at most ${MAX_IDS} message ids`);
  }
  const conn = await call.ownConnection(body.connectionId);
  await call.env.requestRateLimit.take('ack', conn.id);
  // An ack only ever removes entries of the connection's own user and token.
  ok(call.ctx, call.env, { acked: await call.env.hub.ack(conn, ids) });
}
