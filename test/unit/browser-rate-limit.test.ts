// The browser client's reading of a 429 ERR_SSE_RATE_LIMITED answer (browser/rate-limit.ts), from
// the server itself and as the leader tab relays it to another tab (the body, no headers).
import test from 'ava';
import { rateLimitedFor, type AnswerLike } from '../../browser/rate-limit.js';

const limited = {
  success: false,
  code: 'ERR_SSE_RATE_LIMITED',
  status: 429,
  data: { retryAfter: 4, error: 'Too many channel changes: retry in 4 s' },
};

function answer(status: number, body: unknown, headers: Record<string, string> = {}): AnswerLike {
  return { response: new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } }), body };
}

test('Retry-After of the server, else data.retryAfter of a relayed answer, else 1 s; only for ERR_SSE_RATE_LIMITED', (t) => {
  t.is(rateLimitedFor(answer(429, limited, { 'retry-after': '3' })), 3000);
  t.is(rateLimitedFor(answer(429, limited)), 4000, 'the leader tab relays the body, not the headers');
  t.is(rateLimitedFor(answer(429, { ...limited, data: {} })), 1000);
  t.is(rateLimitedFor(answer(429, limited, { 'retry-after': '99999' })), 300_000, 'capped');
  t.is(rateLimitedFor(answer(429, { code: 'ERR_SSE_TOO_MANY_CONNECTIONS' }, { 'retry-after': '3' })), undefined);
  t.is(rateLimitedFor(answer(200, { success: true })), undefined);
  t.is(rateLimitedFor(answer(429, 'busy')), undefined);
});
