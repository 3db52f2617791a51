import { SseUnknownConnectionError } from '../core/errors.js';
import type { ClientLeaving } from '../hub.js';
import type { BeaconCall } from './call.js';
import { connectionIdOf, ok } from './endpoint.js';
import { reachOf } from './reach.js';
import { sendError } from './response.js';

const BEACON_LIMIT = 16 * 1024;

/**
 * `POST {base}/connect/disconnect.do`: the client says it is leaving (a `sendBeacon` form
 * with `connectionId`, `clientId`, `reason`, `duration`, `sessionDuration`). The unguessable id
 * is the credential: a beacon sent while the page unloads may carry no cookie. The Java
 * parameters `cluster` (`false`: this node only) and `timeout` (ms, the longest wait for a
 * peer), in the form or the query. Answers `{connectionId, closed: true, count}`, with
 * `timeout: true` when a peer did not answer in time; an unknown connection is a 404 whose
 * `data` has `count: 0` (the Java library's 200 answer), and `timeout: true` likewise.
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
  const reach = reachOf((key) => form[key] ?? ctx.query[key]);
  const { value: count, partial } = await env.hub.clientLeft(id, report, reach);
  if (count === 0) {
    // The route's Java data, and whether a peer that may hold it did not answer (a 4xx: nothing to report).
    sendError(ctx, new SseUnknownConnectionError(id), () => undefined, partial ? { count: 0, timeout: true } : { count: 0 });
    return;
  }
  // `count`, `timeout`: the Java library's answer, `{count}` connections closed, whether peers were late.
  ok(ctx, env, partial ? { connectionId: id, closed: true, count, timeout: true } : { connectionId: id, closed: true, count });
}
