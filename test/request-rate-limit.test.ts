// Per-connection rate limits of what a page sends (issue 26): `message/*.do`, `upload/*.do`
// and `ack.do` answer 429 with Retry-After past their bucket and do nothing; the browser
// client's ack batcher sends refused ids again. The browser's request pipeline against these
// limits: test/unit/browser/request-pipeline-rate-limit.test.ts (type-checked with the DOM).
import test from 'ava';
import { AckBatcher } from '../browser/ack-batcher.js';
import { postJson, startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const BOUNDARY = 'rate-boundary';

const upload = (): { body: string; headers: Record<string, string> } => ({
  body: `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--${BOUNDARY}--\r\n`,
  headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
});

test('message.do and upload.do: past the bucket 429 with Retry-After, the app not called; per connection', async (t) => {
  const seen: string[] = [];
  const s = await startPlugin(t, {
    requestRateLimit: { message: { perSecond: 1, burst: 1 }, upload: { perSecond: 1, burst: 1 } },
    onMessage: (path) => seen.push(`message ${path}`),
    onUpload: (path) => seen.push(`upload ${path}`),
  });
  const a = await RawStream.open(t, `${s.base}/connect?access-token=7`);
  const b = await RawStream.open(t, `${s.base}/connect?access-token=7`);
  const message = (c: RawStream, n: number) => postJson(`${s.base}/connect/message/m${n}.do?access-token=7&connectionId=${c.connectionId}`, { n });
  // The bucket: one per second plus a burst of one.
  t.is((await message(a, 1)).status, 200);
  t.is((await message(a, 2)).status, 200);
  const refused = await fetch(`${s.base}/connect/message/m3.do?access-token=7&connectionId=${a.connectionId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  t.is(refused.status, 429);
  t.true(Number(refused.headers.get('retry-after')) >= 1);
  t.is(((await refused.json()) as { code: string }).code, 'ERR_SSE_RATE_LIMITED');
  t.is((await message(b, 4)).status, 200, 'another connection has its own bucket');
  const up = (n: number) =>
    fetch(`${s.base}/connect/upload/u${n}.do?access-token=7&connectionId=${a.connectionId}`, { method: 'POST', ...upload() }).then((r) => r.status);
  t.deepEqual([await up(1), await up(2), await up(3)], [200, 200, 429]);
  t.deepEqual(seen, ['message m1', 'message m2', 'message m4', 'upload u1', 'upload u2']);
});

test('ack.do past its bucket: 429, nothing acknowledged; requestRateLimit: false turns the limits off', async (t) => {
  const s = await startPlugin(t, { qos: { file: ':memory:' }, requestRateLimit: { ack: { perSecond: 1, burst: 1 } } });
  const c = await RawStream.open(t, `${s.base}/connect?access-token=7&ack=1`);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await s.plugin.hub.qos.sendByUserId(7, 'e', i)).messageId);
  const ack = (id: string) => postJson(`${s.base}/connect/ack.do?access-token=7`, { connectionId: c.connectionId, ids: [id] });
  t.is((await ack(ids[0]!)).status, 200);
  t.is((await ack(ids[1]!)).status, 200);
  const third = await ack(ids[2]!);
  t.is(third.status, 429);
  t.is((await s.plugin.hub.qos.list({ userId: '7' }, 0, 10)).total, 1, 'the refused ack removed nothing');

  const off = await startPlugin(t, { requestRateLimit: false });
  const d = await RawStream.open(t, `${off.base}/connect?access-token=7`);
  for (let i = 0; i < 60; i++) {
    const r = await postJson(`${off.base}/connect/message/x.do?access-token=7&connectionId=${d.connectionId}`, { i });
    if (r.status !== 200) return t.fail(`call ${i}: ${r.status}`);
  }
  t.pass();
});

test('the ack batcher sends ids refused by the rate limit again after Retry-After, before newer ones', async (t) => {
  const sent = await new Promise<string[]>((resolve) => {
    const batcher = new AckBatcher(resolve, 1);
    batcher.later(['a', 'b'], 30);
    batcher.add('c');
  });
  t.deepEqual(sent, ['a', 'b', 'c']);
});
