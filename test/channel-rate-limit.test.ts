// Rate limits of a page's own channel changes (`join.do` / `leave.do`, issue 21 finding 4):
// per connection and per user, 429 ERR_SSE_RATE_LIMITED with Retry-After, nothing changed by
// a refused call, and calls allowed again once the window is over. Real HTTP on loopback.
import test from 'ava';
import { ssePlugin, type SsePluginOptions } from '../lib/index.js';
import { eventually } from './helpers/cluster.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const allowAll: Partial<SsePluginOptions> = { authorizeChannel: () => true };

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { code?: string; data?: { channels?: string[]; retryAfter?: number } };
}

async function change(s: StartedPlugin, op: 'join' | 'leave', token: string, connectionId: string, channels: string[]): Promise<Answer> {
  const res = await fetch(`${s.base}/connect/${op}.do?access-token=${token}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ connectionId, channels }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Answer['body'] };
}

const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}:${i}`);

test('per connection: past the limit join.do and leave.do answer 429 with Retry-After and change nothing; the window ends, calls work again', async (t) => {
  const s = await startPlugin(t, { ...allowAll, channelRateLimit: { perConnection: 4, perUser: 1000, windowMs: 3000 } });
  const stream = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  const ok = await change(s, 'join', '1', stream.connectionId, names('room', 4));
  t.is(ok.status, 200);
  t.deepEqual(ok.body.data?.channels, names('room', 4));

  const refused = await change(s, 'leave', '1', stream.connectionId, ['room:0']);
  t.is(refused.status, 429);
  t.is(refused.body.code, 'ERR_SSE_RATE_LIMITED');
  const retryAfter = Number(refused.retryAfter);
  t.true(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 3, `Retry-After: ${refused.retryAfter}`);
  t.is(refused.body.data?.retryAfter, retryAfter, 'the same number in the body, for an answer relayed without headers');
  t.deepEqual(await s.plugin.hub.channelsOf(stream.connectionId), names('room', 4), 'the refused leave left nothing');
  t.is((await change(s, 'join', '1', stream.connectionId, ['other'])).status, 429, 'join.do too');

  // Another connection of the same user has an allowance of its own.
  const second = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  t.is((await change(s, 'join', '1', second.connectionId, ['lobby'])).status, 200);

  // The window ends: the first connection may change its channels again.
  await eventually(async () => (await change(s, 'leave', '1', stream.connectionId, ['room:0'])).status === 200, 'a leave allowed again', 10_000);
  t.deepEqual(await s.plugin.hub.channelsOf(stream.connectionId), names('room', 4).slice(1));
});

test('per user: all connections of a user share one allowance; other users and tenants keep theirs', async (t) => {
  const s = await startPlugin(t, { ...allowAll, channelRateLimit: { perConnection: 100, perUser: 5, windowMs: 60_000 } });
  const a = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  const b = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  t.is((await change(s, 'join', '1', a.connectionId, names('a', 3))).status, 200);
  const refused = await change(s, 'join', '1', b.connectionId, names('b', 3));
  t.is(refused.status, 429, '3 + 3 names past the user limit of 5');
  t.is(refused.body.code, 'ERR_SSE_RATE_LIMITED');
  t.true(Number(refused.retryAfter) >= 50, `Retry-After counts down the user's window: ${refused.retryAfter}`);
  t.deepEqual(await s.plugin.hub.channelsOf(b.connectionId), []);
  t.is((await change(s, 'join', '1', b.connectionId, names('b', 2))).status, 200, 'what is left of the allowance');
  t.is((await change(s, 'leave', '1', a.connectionId, ['a:0'])).status, 429);

  // User 1 of another tenant, and user 2, are other people.
  const other = await RawStream.open(t, `${s.base}/connect?access-token=1@acme`);
  t.is((await change(s, 'join', '1@acme', other.connectionId, names('c', 5))).status, 200);
  const two = await RawStream.open(t, `${s.base}/connect?access-token=2`);
  t.is((await change(s, 'join', '2', two.connectionId, names('d', 5))).status, 200);
});

test('a user over the limit is refused before the body is read: even a malformed body gets 429, not 400', async (t) => {
  const s = await startPlugin(t, { ...allowAll, channelRateLimit: { perConnection: 100, perUser: 3, windowMs: 60_000 } });
  const stream = await RawStream.open(t, `${s.base}/connect?access-token=5`);
  t.is((await change(s, 'join', '5', stream.connectionId, names('a', 3))).status, 200);
  const res = await fetch(`${s.base}/connect/join.do?access-token=5`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"not json',
  });
  t.is(res.status, 429);
  t.truthy(res.headers.get('retry-after'));
  await res.body?.cancel();
  // Another user is not affected, and a malformed body from them is the 400 it always was.
  const other = await fetch(`${s.base}/connect/join.do?access-token=6`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"not json',
  });
  t.is(other.status, 400);
  await other.body?.cancel();
});

test('a refusal by the user limit does not spend the connection allowance', async (t) => {
  const s = await startPlugin(t, { ...allowAll, channelRateLimit: { perConnection: 4, perUser: 6, windowMs: 60_000 } });
  const a = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  const b = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  t.is((await change(s, 'join', '1', a.connectionId, names('a', 4))).status, 200);
  t.is((await change(s, 'join', '1', b.connectionId, names('b', 3))).status, 429, 'user: 4 + 3 > 6');
  t.is((await change(s, 'join', '1', b.connectionId, names('b', 2))).status, 200, 'b still has 4; the user 2');
});

test('channelRateLimit: false turns the limits off; bad options are refused at once', async (t) => {
  const s = await startPlugin(t, { ...allowAll, channelRateLimit: false });
  const stream = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  for (let i = 0; i < 6; i++) {
    t.is((await change(s, 'join', '1', stream.connectionId, names(`r${i}`, 60))).status, 200);
    t.is((await change(s, 'leave', '1', stream.connectionId, names(`r${i}`, 60))).status, 200);
  }
  const plugin = (channelRateLimit: unknown): unknown =>
    ssePlugin('/sse/x', { authenticate: () => null, channelRateLimit: channelRateLimit as SsePluginOptions['channelRateLimit'] });
  t.throws(() => plugin({ perConnection: 0 }), { instanceOf: TypeError, message: /perConnection/ });
  t.throws(() => plugin({ perUser: -1 }), { instanceOf: TypeError, message: /perUser/ });
  t.throws(() => plugin({ perUser: Infinity }), { instanceOf: TypeError, message: /perUser/ });
  t.throws(() => plugin({ windowMs: 2 ** 32 }), { instanceOf: TypeError, message: /windowMs/ });
  t.throws(() => plugin('yes'), { instanceOf: TypeError, message: /channelRateLimit/ });
});

test('the default limits allow a page its whole channel cap, joined and left, and refuse a flood', async (t) => {
  const s = await startPlugin(t, allowAll);
  const stream = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  t.is((await change(s, 'join', '1', stream.connectionId, names('room', 64))).status, 200);
  t.is((await change(s, 'leave', '1', stream.connectionId, names('room', 64))).status, 200);
  const flood = await change(s, 'join', '1', stream.connectionId, names('more', 64));
  t.is(flood.status, 429);
  t.true(Number(flood.retryAfter) >= 1 && Number(flood.retryAfter) <= 10);
});
