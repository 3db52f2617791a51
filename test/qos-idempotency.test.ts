import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

// A durable send with an idempotency key, retried: stored once, delivered once, the first
// send's id every time; on a real SQLite file (also after a restart) and on a real Redis
// (also through another node sharing it).

const { unavailable } = redisTest('qos-idempotency.test.ts');
const redisSerial = unavailable === undefined ? test.serial : test.skip;

/** Sends once, then retries three times (one after the other, then two in one tick); answers the ids. */
async function sendAndRetry(t: ExecutionContext, first: StartedPlugin, retry: StartedPlugin): Promise<string[]> {
  const send = (node: StartedPlugin): Promise<{ messageId: string; delivered: number }> =>
    node.plugin.hub.qos.sendByUserId(7, 'invoice', { n: 42 }, { idempotencyKey: 'invoice-42' });
  const a = await send(first);
  const b = await send(retry);
  const [c, d] = await Promise.all([send(retry), send(first)]);
  t.is(b.delivered + c.delivered + d.delivered, 0, 'a retry delivers nothing again');
  return [a, b, c, d].map((r) => r.messageId);
}

test('SQLite: an idempotent durable send retried 3 times is stored and delivered once, with the first id; also after a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-idem-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'qos.db');
  const node = await startPlugin(t, { qos: { file } });
  const page = await RawStream.open(t, `${node.base}/connect?access-token=7&ack=1`);
  const ids = await sendAndRetry(t, node, node);
  t.is(new Set(ids).size, 1, JSON.stringify(ids));
  t.is(node.plugin.hub.qos.pendingCount({ userId: 7 }), 1, 'stored once');
  await node.plugin.hub.sendByUserId(7, 'marker', 1);
  await page.next('marker');
  t.is(page.named('invoice').length, 1, 'delivered once');
  t.is(page.named('invoice')[0]!.id, ids[0]);
  // Another key is another message.
  const other = await node.plugin.hub.qos.sendByUserId(7, 'invoice', { n: 43 }, { idempotencyKey: 'invoice-43' });
  t.not(other.messageId, ids[0]);
  t.is(node.plugin.hub.qos.pendingCount({ userId: 7 }), 2);
  await node.plugin.close();

  // The key is in the file: a retry after a restart is still the first send.
  const again = await startPlugin(t, { qos: { file } });
  const retried = await again.plugin.hub.qos.sendByUserId(7, 'invoice', { n: 42 }, { idempotencyKey: 'invoice-42' });
  t.is(retried.messageId, ids[0]);
  t.is(again.plugin.hub.qos.pendingCount({ userId: 7 }), 2);
  await t.throwsAsync(() => again.plugin.hub.qos.sendByUserId(7, 'invoice', 1, { idempotencyKey: '' }), { instanceOf: TypeError });
});

test('SQLite: the key lives as long as the message (ttlMs): a retry after it is a new message', async (t) => {
  const node = await startPlugin(t, { qos: { file: ':memory:' } });
  const first = await node.plugin.hub.qos.sendByUserId(7, 'ping', 1, { idempotencyKey: 'short', ttlMs: 50 });
  await new Promise((r) => setTimeout(r, 80));
  const later = await node.plugin.hub.qos.sendByUserId(7, 'ping', 1, { idempotencyKey: 'short', ttlMs: 50 });
  t.not(later.messageId, first.messageId);
});

redisSerial('Redis: an idempotent durable send retried 3 times, through two nodes sharing the store, is stored and delivered once', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const a = await startPlugin(t, { qos: { redis: redis.url } });
  const b = await startPlugin(t, { qos: { redis: redis.url } });
  const page = await RawStream.open(t, `${a.base}/connect?access-token=7&ack=1`);
  const ids = await sendAndRetry(t, a, b);
  t.is(new Set(ids).size, 1, JSON.stringify(ids));
  // Counts of a shared store lag (reloaded at each expiry tick): ask the store itself.
  t.is((await a.plugin.hub.qos.list({ userId: '7' }, 0, 10)).total, 1, 'stored once');
  await a.plugin.hub.sendByUserId(7, 'marker', 1);
  await page.next('marker');
  t.is(page.named('invoice').length, 1, 'delivered once');
  const other = await b.plugin.hub.qos.sendByUserId(7, 'invoice', { n: 43 }, { idempotencyKey: 'invoice-43' });
  t.not(other.messageId, ids[0]);
});
