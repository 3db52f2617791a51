import { SseUnknownConnectionError } from '../core/errors.js';
import { readBeaconForm } from './body.js';
import { connectionIdOf, ok, type Endpoint } from './endpoint.js';

const BEACON_LIMIT = 16 * 1024;

/**
 * `POST {base}/connect/disconnect.do`: the client says it is leaving (a `sendBeacon` form
 * with `connectionId`, `clientId`, `reason`, `duration`, `sessionDuration`). The unguessable id
 * is the credential: a beacon sent while the page unloads may carry no cookie.
 */
export const disconnect: Endpoint = async (ctx, env) => {
  const form = await readBeaconForm(ctx, BEACON_LIMIT);
  const id = connectionIdOf(form.connectionId ?? ctx.query.connectionId);
  const conn = env.hub.getLocalConnection(id);
  if (conn === undefined) {
    // The stream may be on another node of the cluster: end it there.
    if (env.hub.cluster !== undefined && (await env.hub.clientLeft(id)) > 0) {
      ok(ctx, env, { connectionId: id, closed: true });
      return;
    }
    throw new SseUnknownConnectionError(id);
  }
  // Online-time accounting: record what the client measured before `disconnect` fires.
  const sessionDuration = Number(form.sessionDuration);
  if (Number.isFinite(sessionDuration) && sessionDuration >= 0) conn.sessionDuration = sessionDuration;
  const duration = Number(form.duration);
  if (Number.isFinite(duration) && duration >= 0) conn.attributes.set('duration', duration);
  if (typeof form.reason === 'string') conn.attributes.set('disconnectReason', form.reason.slice(0, 64));
  conn.close('client');
  ok(ctx, env, { connectionId: id, closed: true });
};
