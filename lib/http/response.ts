import type { Context } from 'koa';
import { isClientGoneError, SseError, SseMethodNotAllowedError, SseRateLimitedError } from '../core/errors.js';
import { toJson } from '../core/frame.js';

/** The Java library's success envelope, kept so that its pages read our answers unchanged. */
export function defaultWrapOkResponse(result: unknown): unknown {
  return { success: true, code: 200, data: result ?? null, message: null, errorMessage: null };
}

/** Writes a JSON body (bigint-safe). */
export function sendJson(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = toJson(body);
}

/**
 * The JSON body of an error. The message is also `error`, at the top and in `data` (with
 * `javaData`): the Java library answered refusals with a bare `{error}` and an unknown
 * connection with `{error}` as the data of a 200, and its pages read it there.
 */
export function errorBody(code: string, status: number, message: string, javaData?: Readonly<Record<string, unknown>>): unknown {
  return { success: false, code, status, data: { ...javaData, error: message }, message, errorMessage: message, error: message };
}

/**
 * What a client is told of a failure on the server's side (5xx), by code: our own words,
 * never the error's message, which may carry a dependency's text (a Redis address, a file
 * path). Any other 5xx code is "Internal server error".
 */
const SERVER_FAULTS: Readonly<Record<string, string>> = {
  ERR_SSE_REDIS_UNAVAILABLE: 'A service this server depends on is unavailable: try again shortly',
  ERR_SSE_CLOSED: 'The server is shutting down: try again shortly',
  ERR_SSE_QUEUE_FULL: 'The durable queue is full',
  ERR_SSE_CLIENT_NOT_BUILT: 'The browser client is not built: run `npm run build`',
  ERR_SSE_DASHBOARD_NOT_BUILT: 'The dashboard is not built: run `npm run build`',
};

/** Server-side states every request would report again, not faults: a shutdown, a bundle not built. */
const NOT_REPORTED: ReadonlySet<string> = new Set(['ERR_SSE_CLOSED', 'ERR_SSE_CLIENT_NOT_BUILT', 'ERR_SSE_DASHBOARD_NOT_BUILT']);

/**
 * Answers an error as JSON with a stable code. A client's mistake (4xx) is told in the
 * message we wrote for it: an `SseError`'s (which never quotes another error: its `cause`
 * holds that), or a 4xx an app handler threw for the client to see (koa's `ctx.throw`
 * convention, `expose` not false). A failure on the server's side (5xx, or anything else)
 * is told only in our own words by code ({@link SERVER_FAULTS}); the error itself, with its
 * `cause`, goes to `report` (the app's `error` event), except a shutdown or a bundle not
 * built ({@link NOT_REPORTED}). Never a stack trace, never a dependency's text. Every error
 * answer of the plugin is built here (endpoints throw; the router answers).
 *
 * @param javaData fields the Java library's answer to that request had (e.g. `{count: 0}`), added to `data`
 */
export function sendError(ctx: Context, err: unknown, report: (err: unknown) => void, javaData?: Readonly<Record<string, unknown>>): void {
  if (err instanceof SseMethodNotAllowedError) ctx.set('Allow', err.allow.join(', '));
  let status: number;
  let code: string;
  let message: string;
  if (err instanceof SseError) {
    status = err.status >= 400 && err.status < 600 ? err.status : 500;
    code = err.code;
    message = status < 500 ? err.message : (SERVER_FAULTS[code] ?? 'Internal server error');
    if (status >= 500 && !NOT_REPORTED.has(code)) report(err);
  } else {
    const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; code?: unknown; message?: unknown } | null;
    const raw = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 500;
    const shown = raw >= 400 && raw < 500 && e?.expose !== false;
    status = shown ? raw : 500;
    code = shown ? (typeof e?.code === 'string' ? e.code : 'ERR_SSE_REQUEST') : 'ERR_SSE_INTERNAL';
    message = !shown ? 'Internal server error' : typeof e?.message === 'string' ? e.message : 'Request refused';
    if (!shown && !isClientGoneError(err)) report(err);
  }
  if (err instanceof SseRateLimitedError) {
    ctx.set('Retry-After', String(err.retryAfter));
    // Also in the body: an answer relayed without its headers (shared tabs) still says when.
    javaData = { ...javaData, retryAfter: err.retryAfter };
  }
  sendJson(ctx, status, errorBody(code, status, message, javaData));
}
