/**
 * The client's side of the server's rate limits: when to send again a call refused for now.
 * Structural types only (no DOM), so that it is tested in Node as well.
 */

/** What this needs of an answer (an `HttpAnswer`). */
export interface AnswerLike {
  response: { status: number; headers: { get(name: string): string | null } };
  body: unknown;
}

/** The longest `Retry-After` followed, in seconds: a longer one waits this long (the call's queue timeout may end it first). */
const MAX_RETRY_AFTER_S = 300;

/**
 * For an answer `429 ERR_SSE_RATE_LIMITED` (the server refused the call for now and changed
 * nothing): how long to wait before sending it again, in ms, from `Retry-After`, else the
 * body's `data.retryAfter` (an answer relayed by the leader tab has no headers), else 1 s.
 * Undefined for any other answer.
 */
export function rateLimitedFor(answer: AnswerLike): number | undefined {
  if (answer.response.status !== 429) return undefined;
  const body = answer.body as { code?: unknown; data?: { retryAfter?: unknown } | null } | null;
  if (body?.code !== 'ERR_SSE_RATE_LIMITED') return undefined;
  const header = answer.response.headers.get('retry-after');
  const fromHeader = header === null || header.trim() === '' ? NaN : Number(header);
  const fromBody = body.data?.retryAfter;
  const seconds = fromHeader >= 0 ? fromHeader : typeof fromBody === 'number' && fromBody >= 0 ? fromBody : 1;
  return Math.min(seconds, MAX_RETRY_AFTER_S) * 1000;
}
