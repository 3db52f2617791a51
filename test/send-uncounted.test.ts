// Count-free sends (`{ count: false }`): they resolve with this node's count at once, reach the
// peers' users all the same, and on the Redis engine the peers answer nothing.
import test from 'ava';
import { Redis } from 'ioredis';
import { MemoryBus } from '../lib/index.js';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('send-uncounted.test.ts');
const withRedis = unavailable === undefined ? test.serial : test.skip;

test('a count-free send resolves with the local count while a stalled peer keeps a counted one waiting', async (t) => {
  const bus = new MemoryBus();
  const node = async (id: string) => {
    const started = await startPlugin(t, { cluster: { transport: bus.transport(id), timeoutMs: 5000 } });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  await RawStream.open(t, `${a.base}/connect?access-token=7`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7`);
  t.is(await a.plugin.hub.sendByUserId(7, 'free', 1, { count: false }), 1);
  t.is((await onB.next('free')).data, '1');

  bus.stall('b');
  let countedDone = false;
  const counted = a.plugin.hub.sendByUserId(7, 'counted', 2).then((n) => {
    countedDone = true;
    return n;
  });
  // The counted send waits for b (up to timeoutMs, 5 s); the count-free one does not.
  t.is(await a.plugin.hub.sendByUserId(7, 'free', 3, { count: false }), 1);
  t.false(countedDone);
  bus.heal('b');
  t.is(await counted, 2);
  await onB.until(() => onB.named('free').length === 2 && onB.named('counted').length === 1, 'both sends on b');
});

withRedis('on Redis a count-free fan-out is one PUBLISH: the peers answer nothing', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    const started = await startPlugin(t, { cluster: { redis: redis.url, timeoutMs: 1000, healthIntervalMs: 500 } });
    await started.plugin.hub.ready();
    nodes.push(started);
  }
  for (const n of nodes) await eventually(() => n.plugin.hub.cluster!.peers().length === 2, 'three nodes see each other');
  const [a, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=1`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=1`);
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=1`);
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  const publishes = async (): Promise<number> => Number(/cmdstat_publish:calls=(\d+)/.exec(await probe.info('commandstats'))?.[1] ?? 0);
  await probe.config('RESETSTAT');
  // Three sends in one tick, each with this node's count only.
  const counts = await Promise.all([1, 2, 3].map((n) => a.plugin.hub.sendByUserId(1, 'x', n, { count: false })));
  t.deepEqual(counts, [1, 1, 1]);
  for (const s of [onA, onB, onC]) await s.until(() => s.named('x').length === 3, 'three sends');
  // One broadcast, and no answer from B or C (a counted send costs one more PUBLISH per peer).
  t.is(await publishes(), 1);
});
