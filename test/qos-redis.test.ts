// Durable delivery on a Redis store shared by several nodes, against a real redis-server
// (loopback, free port, AOF everysec): nodes with and without a cluster between them, Redis
// restarted, paused and down. Store-level semantics run in test/unit/qos-redis.test.ts.
import test from 'ava';
import { Redis } from 'ioredis';
import { createHub, MemoryBus, type QosExpiredEvent } from '../lib/index.js';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { postJson, startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('qos-redis');
const ci = process.env.CI === 'true' || process.env.CI === '1';
const redisSerial = unavailable === undefined ? test.serial : test.skip;
if (unavailable !== undefined && ci) test('redis-server is available under CI', (t) => t.fail(unavailable));

const unavailableCode = { code: 'ERR_SSE_REDIS_UNAVAILABLE' };

redisSerial('two nodes sharing Redis, no cluster: stored via A, A gone, drained by a connection on B, acked via B, gone', async (t) => {
  const redis = await RedisServer.start(t);
  const a = await startPlugin(t, { qos: { redis: redis.url } });
  const b = await startPlugin(t, { qos: { redis: redis.url } });
  t.is(a.plugin.hub.qos.tag, b.plugin.hub.qos.tag, 'one store, one tag');
  const sent = await a.plugin.hub.qos.sendByUserId(7, 'offer', { id: 1 });
  t.true(sent.messageId.endsWith(a.plugin.hub.qos.tag!));
  await a.plugin.close(); // losing the node that took the send loses nothing

  const tab = await RawStream.open(t, `${b.base}/connect?access-token=7&ack=1`);
  const got = await tab.next('offer');
  t.is(got.id, sent.messageId);
  t.deepEqual(JSON.parse(got.data), { id: 1 });
  t.is((await b.plugin.hub.qos.status(sent.messageId))?.targets.length, 1, 'pending until acked');
  const res = await postJson(`${b.base}/connect/ack.do?access-token=7`, { connectionId: tab.connectionId, ids: [sent.messageId] });
  t.deepEqual(res.body.data, { acked: 1 });
  t.is(await b.plugin.hub.qos.status(sent.messageId), undefined);
  const again = await RawStream.open(t, `${b.base}/connect?access-token=7&ack=1`);
  await b.plugin.hub.sendByConnectionId(again.connectionId, 'end', 1);
  await again.next('end');
  t.is(again.named('offer').length, 0, 'an acked message is not resent');
  t.deepEqual([...a.errors, ...b.errors], []);
});

redisSerial('a cluster sharing Redis: live on B for a send on A, acked at B in Redis; nothing pulled or acked through peers', async (t) => {
  const redis = await RedisServer.start(t);
  const bus = new MemoryBus();
  const peerRequests: string[] = [];
  bus.onRequest = (_from, _to, request) => {
    if (request.type === 'qos-pending' || request.type === 'qos-ack') peerRequests.push(request.type);
  };
  const node = async (id: string) => {
    const started = await startPlugin(t, { cluster: { transport: bus.transport(id), timeoutMs: 500 }, qos: { redis: redis.url } });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  const qosA = a.plugin.hub.qos;

  // Offline: stored once; the user connects to b and gets it once (b reads the store itself).
  const offline = await qosA.sendByUserId(7, 'offer', { id: 1 });
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7`);
  t.is((await onB.next('offer')).id, offline.messageId);
  await eventually(async () => (await qosA.status(offline.messageId)) === undefined, 'acked by the write on b, seen from a');
  await b.plugin.hub.sendByConnectionId(onB.connectionId, 'end', 1);
  await onB.next('end');
  t.is(onB.named('offer').length, 1, 'written once');

  // Online on b with acks: delivered live through the cluster, acked through b's ack.do.
  const tab = await RawStream.open(t, `${b.base}/connect?access-token=8&ack=1`);
  const live = await qosA.sendByUserId(8, 'offer', { id: 2 });
  t.is(live.delivered, 1);
  t.is((await tab.next('offer')).id, live.messageId);
  const res = await postJson(`${b.base}/connect/ack.do?access-token=8`, { connectionId: tab.connectionId, ids: [live.messageId] });
  t.deepEqual(res.body.data, { acked: 1 });
  t.is(await qosA.status(live.messageId), undefined);

  // Live on a, acked through b (b hands the ack to the node holding the connection).
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=9&ack=1`);
  const here = await qosA.sendByUserId(9, 'offer', { id: 3 });
  t.is((await onA.next('offer')).id, here.messageId);
  const viaB = await postJson(`${b.base}/connect/ack.do?access-token=9`, { connectionId: onA.connectionId, ids: [here.messageId] });
  t.deepEqual(viaB.body.data, { acked: 1 });
  t.is(await b.plugin.hub.qos.status(here.messageId), undefined);
  t.deepEqual(peerRequests, [], 'peers sharing the store never pull from or ack through each other');
  t.deepEqual([...a.errors, ...b.errors], []);
});

redisSerial('a node without a store, in a cluster with two nodes sharing Redis: asks one of them, gets each message once', async (t) => {
  const redis = await RedisServer.start(t);
  const bus = new MemoryBus();
  const pulls: string[] = [];
  const acks: string[] = [];
  bus.onRequest = (_from, to, request) => {
    if (request.type === 'qos-pending') pulls.push(to);
    if (request.type === 'qos-ack') acks.push(to);
  };
  const node = async (id: string, withStore: boolean) => {
    const started = await startPlugin(t, {
      cluster: { transport: bus.transport(id), timeoutMs: 500 },
      ...(withStore ? { qos: { redis: redis.url } } : {}),
    });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a', true);
  await node('b', true);
  const c = await node('c', false);
  await eventually(() => c.plugin.hub.cluster!.peers().length === 2, 'c knows a and b');
  const sent = await a.plugin.hub.qos.sendByUserId(4, 'offer', 'once');
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=4`);
  t.is((await onC.next('offer')).id, sent.messageId);
  await eventually(async () => (await a.plugin.hub.qos.status(sent.messageId)) === undefined, 'acked by the write, through one peer');
  await c.plugin.hub.sendByConnectionId(onC.connectionId, 'end', 1);
  await onC.next('end');
  t.is(onC.named('offer').length, 1, 'written once');
  t.is(pulls.length, 1, 'one of the two nodes sharing the store was asked');
  t.is(acks.length, 1, 'and one was told of the ack');
});

redisSerial('ids follow the commit order across nodes: a Last-Event-ID from one node resumes what the other sent after it', async (t) => {
  const redis = await RedisServer.start(t);
  const a = await startPlugin(t, { qos: { redis: redis.url } });
  const b = await startPlugin(t, { qos: { redis: redis.url } });
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const via = i % 2 === 0 ? a : b;
    ids.push((await via.plugin.hub.qos.sendByTenantId(3, 'news', i)).messageId);
  }
  t.deepEqual([...ids].sort(), ids, 'every id sorts after the ones committed before it');
  const s = await RawStream.open(t, `${a.base}/connect?access-token=9@3&lastEventId=${ids[9]}`);
  await s.until(() => s.named('news').length === 10, 'the ten after the resume point');
  t.deepEqual(
    s.named('news').map((e) => e.id),
    ids.slice(10),
  );
});

redisSerial('caps and expiry are shared: a queue full through A is full for B; each expired message is reported by one node', async (t) => {
  const redis = await RedisServer.start(t);
  const options = { name: 'test', qos: { redis: redis.url, maxPendingPerTarget: 2, maxMessages: 5, expiryIntervalMs: 3_600_000 } };
  const a = createHub(options);
  const b = createHub(options);
  t.teardown(async () => {
    await a.close({ drainMs: 0 });
    await b.close({ drainMs: 0 });
  });
  await a.qos.sendByUserId(1, 'm', 1);
  await b.qos.sendByUserId(1, 'm', 2);
  await t.throwsAsync(a.qos.sendByUserId(1, 'm', 3), { code: 'ERR_SSE_QUEUE_FULL' });
  await t.throwsAsync(b.qos.sendByUserId([2, 1], 'm', 3), { code: 'ERR_SSE_QUEUE_FULL' }, 'nothing stored when one target is full');
  await b.qos.sendByUserId(2, 'm', 4, { ttlMs: 1 });
  await a.qos.sendByUserId(3, 'm', 5, { ttlMs: 1 });
  await b.qos.sendByTenantId(1, 'log', 6, { ttlMs: 1 });
  await t.throwsAsync(a.qos.sendByUserId(4, 'm', 7), { code: 'ERR_SSE_QUEUE_FULL' }, 'five messages in total');

  const expired: QosExpiredEvent[] = [];
  a.on('qos-expired', (e) => expired.push(e));
  b.on('qos-expired', (e) => expired.push(e));
  // Three short-lived messages (two queued, one tenant log): each expires 1 ms after its own
  // send, so one round may find only the first ones; loop until all three are gone.
  let removed = 0;
  await eventually(async () => {
    const [x, y] = await Promise.all([a.qos.expireNow(), b.qos.expireNow()]);
    removed += x + y;
    return removed >= 3;
  }, 'the short-lived messages expire');
  t.is(removed, 3);
  t.deepEqual(expired.map((e) => `${e.kind}:${e.key}`).sort(), ['user:2', 'user:3'], 'once each, by whichever node got there first');
  t.is(await a.qos.expireNow(), 0);
  await b.qos.sendByUserId(4, 'm', 8); // room again
});

redisSerial('Redis restarted (SIGTERM, AOF): unacked messages survive and the store recovers by itself', async (t) => {
  const redis = await RedisServer.start(t);
  const { base, plugin, errors } = await startPlugin(t, { qos: { redis: redis.url } });
  const sent = await Promise.all(Array.from({ length: 100 }, (_, i) => plugin.hub.qos.sendByUserId(7, 'offer', i)));
  await redis.restart();
  let after: string | undefined;
  await eventually(async () => {
    try {
      after = (await plugin.hub.qos.sendByUserId(7, 'offer', 100)).messageId;
      return true;
    } catch (err) {
      t.is((err as { code?: string }).code, 'ERR_SSE_REDIS_UNAVAILABLE', 'while Redis is back on its feet, sends fail fast');
      return false;
    }
  }, 'a send succeeds once Redis is back');
  const s = await RawStream.open(t, `${base}/connect?access-token=7&ack=1`);
  await s.until(() => s.named('offer').length === 101, 'all 101 messages');
  t.deepEqual(
    s.named('offer').map((e) => e.id),
    [...sent.map((x) => x.messageId), after],
  );
  t.deepEqual(
    s.named('offer').map((e) => Number(e.data)),
    [...Array(101).keys()],
  );
  t.deepEqual(errors, []);
});

redisSerial('Redis paused (SIGSTOP) beyond the command timeout: sends reject with ERR_SSE_REDIS_UNAVAILABLE, then work after resume', async (t) => {
  const redis = await RedisServer.start(t);
  const hub = createHub({ name: 'test', qos: { redis: redis.url, redisCommandTimeoutMs: 300 } });
  t.teardown(async () => {
    redis.resume();
    await hub.close({ drainMs: 0 });
  });
  await hub.qos.sendByUserId(1, 'm', 'before');
  redis.pause();
  await t.throwsAsync(hub.qos.sendByUserId(1, 'm', 'paused'), unavailableCode);
  await t.throwsAsync(hub.qos.status('0'.repeat(26)), unavailableCode);
  redis.resume();
  await eventually(async () => {
    try {
      await hub.qos.sendByUserId(1, 'm', 'after');
      return true;
    } catch {
      return false;
    }
  }, 'sends work again after resume');
  const { items } = await hub.qos.list({ userId: '1' }, 0, 10);
  t.deepEqual(items.at(0)?.message.data, 'before');
  t.deepEqual(items.at(-1)?.message.data, 'after');
});

redisSerial('Redis down: sends reject at once; a connecting stream stays open and gets its messages on the next connection', async (t) => {
  const redis = await RedisServer.start(t);
  const { base, plugin, errors } = await startPlugin(t, { qos: { redis: redis.url } });
  const sent = await plugin.hub.qos.sendByUserId(5, 'offer', 'kept');
  await redis.stop();
  await t.throwsAsync(plugin.hub.qos.sendByUserId(5, 'offer', 'refused'), unavailableCode);

  const s = await RawStream.open(t, `${base}/connect?access-token=5&ack=1`);
  await eventually(() => errors.some((e) => (e as { code?: string }).code === 'ERR_SSE_REDIS_UNAVAILABLE'), 'the failed replay is reported');
  t.is(await plugin.hub.sendByConnectionId(s.connectionId, 'still-open', 1), 1, 'the stream stays');
  await s.next('still-open');
  t.is(s.named('offer').length, 0);

  await redis.restart();
  await eventually(async () => {
    try {
      await plugin.hub.qos.status(sent.messageId);
      return true;
    } catch {
      return false;
    }
  }, 'Redis is back');
  const next = await RawStream.open(t, `${base}/connect?access-token=5&ack=1`);
  t.is((await next.next('offer')).id, sent.messageId);
});

redisSerial(
  'keys with colons, braces and non-ASCII, a message to 300 users; a client passed in is duplicated and stays open; listing, status and cancel across nodes',
  async (t) => {
    const redis = await RedisServer.start(t);
    const own = new Redis(redis.url);
    t.teardown(() => own.disconnect());
    const a = createHub({ qos: { redis: own, redisPrefix: 'app:x' } });
    const b = createHub({ qos: { redis: redis.url, redisPrefix: 'app:x' } });
    t.teardown(async () => {
      await b.close({ drainMs: 0 });
    });
    const odd = ['a:b', 'x{y}z', 'ünï €', '*?[]'];
    const sent = [];
    for (const key of odd) sent.push(await a.qos.sendByUserId(key, 'm', { key }));
    const log = await b.qos.sendByChannel('c:1', 'news', 'n', { listening: true });
    for (const [i, key] of odd.entries()) {
      t.deepEqual((await b.qos.status(sent[i]!.messageId))?.targets, [{ kind: 'user', key }]);
      t.is((await b.qos.list({ userId: key }, 0, 10)).items[0]?.message.id, sent[i]!.messageId);
    }
    const all = await a.qos.list({}, 0, 3);
    t.is(all.total, 5);
    t.deepEqual(
      all.items.map((x) => x.message.id),
      sent.slice(0, 3).map((x) => x.messageId),
    );
    t.deepEqual(
      (await a.qos.list({}, 3, 10)).items.map((x) => x.message.id),
      [sent[3]!.messageId, log.messageId],
    );
    t.is((await a.qos.list({ channel: 'c:1' }, 0, 10)).items[0]?.message.listening, true);
    t.is((await a.qos.list({ userId: 'a:b', channel: 'c:1' }, 0, 10)).total, 0, 'every filter field must match');
    t.true(await b.qos.cancel(sent[0]!.messageId));
    t.false(await a.qos.cancel(sent[0]!.messageId), 'gone for every node');
    t.is(await a.qos.status(sent[0]!.messageId), undefined);
    // A message to many targets (its hash is written in parts); each ack removes one target.
    const users = Array.from({ length: 300 }, (_, i) => `many-${i}`);
    const wide = await a.qos.sendByUserId(users, 'm', 'wide');
    t.is((await b.qos.status(wide.messageId))?.targets.length, 300);
    t.is(await b.qos.ack({ id: 'c1', userId: 'many-7' }, [wide.messageId]), 1);
    t.is((await a.qos.status(wide.messageId))?.targets.length, 299);
    await a.close({ drainMs: 0 });
    t.is(await own.ping(), 'PONG', "the app's own client is not closed");
  },
);

redisSerial('a node started while Redis is down works once Redis is up, with the counts of what is stored', async (t) => {
  const redis = await RedisServer.start(t);
  const first = createHub({ name: 'test', qos: { redis: redis.url } });
  for (let i = 0; i < 3; i++) await first.qos.sendByUserId(6, 'm', i);
  await first.close({ drainMs: 0 });
  await redis.stop();
  const errors: unknown[] = [];
  const late = createHub({ name: 'test', qos: { redis: redis.url, redisCommandTimeoutMs: 300 } });
  late.on('error', (err) => errors.push(err));
  t.teardown(() => late.close({ drainMs: 0 }));
  await t.throwsAsync(late.qos.sendByUserId(6, 'm', 'refused'), unavailableCode);
  await redis.restart();
  await eventually(() => late.qos.pendingCount({ userId: 6 }) === 3, 'the counts are loaded once Redis is up');
  t.is((await late.qos.sendByUserId(6, 'm', 3)).delivered, 0);
  t.is(late.qos.pendingCount({ userId: 6 }), 4);
  t.is(late.qos.pendingCount(), 4);
});

test('qos needs exactly one of file and redis; a bad prefix or source is a TypeError', (t) => {
  t.throws(() => createHub({ qos: {} }), { instanceOf: TypeError, message: /exactly one of/ });
  t.throws(() => createHub({ qos: { file: ':memory:', redis: 'redis://127.0.0.1:1' } }), { instanceOf: TypeError, message: /exactly one of/ });
  t.throws(() => createHub({ qos: { redis: 'http://127.0.0.1:1' } }), { instanceOf: TypeError, message: /redis:\/\// });
  t.throws(() => createHub({ qos: { redis: 'redis://127.0.0.1:1', redisPrefix: 'a{b}' } }), { instanceOf: TypeError, message: /redisPrefix/ });
  t.throws(() => createHub({ qos: { redis: 'redis://127.0.0.1:1', redisCommandTimeoutMs: 0 } }), { instanceOf: TypeError });
});

redisSerial('a Redis store ignores qos.replication: the database is the copy, nothing is copied to peers', async (t) => {
  const redis = await RedisServer.start(t);
  const bus = new MemoryBus();
  const copies: string[] = [];
  bus.onRequest = (_from, _to, request) => {
    if (request.type.startsWith('qos-copy')) copies.push(request.type);
  };
  const node = async (id: string) => {
    const started = await startPlugin(t, {
      cluster: { transport: bus.transport(id), timeoutMs: 2000 },
      qos: { redis: redis.url, replication: { copies: 2, whenShort: 'fail' } },
    });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  await node('b');
  const sent = await a.plugin.hub.qos.sendByUserId(7, 'offer', 1);
  t.is(sent.copies, 1);
  t.deepEqual(copies, []);
  t.is(a.plugin.hub.qos.replicationStats().held, 0);
});
