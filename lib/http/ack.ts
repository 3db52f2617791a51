import { SseBadRequestError, SseNotFoundError } from '../core/errors.js';
import { isMessageId } from '../qos/message-id.js';
import { readJsonObject } from './body.js';
import { connectionIdOf, ok, requireOwnConnection, requireUser, type Endpoint } from './endpoint.js';

const MAX_IDS = 1000;

/**
 * `POST {base}/connect/ack.do` with `{connectionId, ids: [...]}`: the client has processed
 * these durable messages. Only the caller's own connection may ack, and an ack only ever
 * removes entries of that connection's user and token: someone else's id does nothing.
 */
export const ack: Endpoint = async (ctx, env) => {
  if (!env.hub.hasQos && env.hub.cluster === undefined) throw new SseNotFoundError(ctx.path);
  const body = await readJsonObject(ctx, env.options.jsonLimit);
  const id = connectionIdOf(body.connectionId ?? ctx.query.connectionId);
  const ids = body.ids;
  if (!Array.isArray(ids) || ids.length > MAX_IDS || !ids.every(isMessageId)) {
    throw new SseBadRequestError(`ids must be an array of at most ${MAX_IDS} message ids`);
  }
  const user = await requireUser(ctx, env);
  const conn = await requireOwnConnection(ctx, env, id, user);
  // An ack only ever removes entries of the connection's own user and token.
  ok(ctx, env, { acked: await env.hub.ack(conn, ids) });
};
