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
 * Answers an error as JSON with a stable code. Client errors (4xx, or an `expose`d error
 * thrown by an app handler) keep their message; anything else becomes a generic 500 and is
 * reported through `report` — never a stack trace to the client.
 *
 * @param javaData fields the Java library's answer to that request had (e.g. `{count: 0}`), added to `data`
 */
export function sendError(ctx: Context, err: unknown, report: (err: unknown) => void, javaData?: Readonly<Record<string, unknown>>): void {
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; code?: unknown; message?: unknown } | null;
  const rawStatus = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 500;
  const status = rawStatus >= 400 && rawStatus < 600 ? rawStatus : 500;
  // Our own errors carry their status (4xx, or 503 while shutting down); a foreign error is
  // shown only if it is a 4xx that does not say otherwise (koa's ctx.throw convention).
  const clientError = err instanceof SseError ? err.status !== 500 : status < 500 && e?.expose !== false;
  if (!clientError && !isClientGoneError(err)) report(err);
  const code =
    err instanceof SseError ? err.code : clientError && typeof e?.code === 'string' ? e.code : clientError ? 'ERR_SSE_REQUEST' : 'ERR_SSE_INTERNAL';
  const message = clientError && typeof e?.message === 'string' ? e.message : 'Internal server error';
  if (err instanceof SseMethodNotAllowedError) ctx.set('Allow', err.allow.join(', '));
  if (err instanceof SseRateLimitedError) {
    ctx.set('Retry-After', String(err.retryAfter));
    // Also in the body: an answer relayed without its headers (shared tabs) still says when.
    javaData = { ...javaData, retryAfter: err.retryAfter };
  }
  const answered = clientError ? status : 500;
  sendJson(ctx, answered, errorBody(code, answered, message, javaData));
}
