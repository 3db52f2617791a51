import { SseUnknownConnectionError } from '../core/errors.js';
import type { ClientLeaving } from '../hub.js';
import type { BeaconCall } from './call.js';
import { connectionIdOf, ok } from './endpoint.js';

const BEACON_LIMIT = 16 * 1024;

/**
 * `POST {base}/connect/disconnect.do`: the client says it is leaving (a `sendBeacon` form
 * with `connectionId`, `clientId`, `reason`, `duration`, `sessionDuration`). The unguessable id
 * is the credential: a beacon sent while the page unloads may carry no cookie. Answers
 * `{connectionId, closed: true, count}`; an unknown connection is a 404 whose `data` has
 * `count: 0` (the Java library's 200 answer).
 */
export async function disconnect(call: BeaconCall): Promise<void> {
  const { ctx, env } = call;
  const form = await call.beaconForm(BEACON_LIMIT);
  const id = connectionIdOf(form.connectionId ?? ctx.query.connectionId);
  const sessionDuration = Number(form.sessionDuration);
  const duration = Number(form.duration);
  const report: ClientLeaving = {};
  if (Number.isFinite(sessionDuration) && sessionDuration >= 0) report.sessionDuration = sessionDuration;
  if (Number.isFinite(duration) && duration >= 0) report.duration = duration;
  if (typeof form.reason === 'string') report.reason = form.reason.slice(0, 64);
  const count = await env.hub.clientLeft(id, report);
  if (count === 0) throw new SseUnknownConnectionError(id);
  // `count`: the Java library's answer, `{count}` connections closed.
  ok(ctx, env, { connectionId: id, closed: true, count });
}
