// The recovery window on the Redis engine (one Redis Stream for the cluster, XADD with MINID /
// MAXLEN trimming, XRANGE on a reconnect): three node processes on a real redis-server, pages
// behind a round-robin balancer that resume as the browser client does, under about 100
// sends/s of each kind: through a rolling restart, and through a node SIGKILLed (Redis keeps
// what it sent). Counts: sent, seen, duplicates shown (0), missed (0).
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { killOne, rollingRestart, startNode, type WindowCluster, type WindowNode } from './helpers/window-cluster.js';

const { unavailable } = redisTest('recovery-redis.test.ts');
const serial = unavailable === undefined ? test.serial : test.skip;

async function redisCluster(t: ExecutionContext, redis: RedisServer): Promise<WindowCluster> {
  const env = { REDIS_URL: redis.url };
  const nodes = await Promise.all([0, 1, 2].map((i) => startNode(t, `n${i}`, env)));
  await eventually(() => nodes.every((n) => n.peers === 2), 'three nodes that see each other', 15_000);
  for (const n of nodes) n.up = true;
  const restart = async (i: number): Promise<WindowNode> => {
    const node = await startNode(t, `n${i}`, env);
    await eventually(() => node.peers === 2, `n${i} back among its peers`, 15_000);
    nodes[i] = node;
    node.up = true;
    return node;
  };
  return { nodes, restart };
}

serial('a rolling restart of three Redis-engine nodes under 100 sends/s: every event once on every page, in order per sender', async (t) => {
  t.timeout(120_000);
  const redis = await RedisServer.start(t, { aof: false });
  const pages = await rollingRestart(t, await redisCluster(t, redis));
  // The Stream holds every node's sends, a restarting one's included: every reconnect recovered.
  const resumes = pages.flatMap((p) => p.finishes.filter((f) => f.resumed));
  t.true(resumes.length > 0 && resumes.every((f) => f.recovered), JSON.stringify(resumes));
  // The window is one Stream, trimmed by time.
  const client = new Redis(redis.url);
  t.teardown(() => client.quit().then(() => undefined));
  const keys = await client.keys('*window*');
  t.true(
    keys.some((k) => k.endsWith(':window')),
    JSON.stringify(keys),
  );
  t.is(await client.type(keys.find((k) => k.endsWith(':window'))!), 'stream');
});

serial('a Redis-engine node SIGKILLed: its pages come back on the others and get everything, its own sends included', async (t) => {
  t.timeout(120_000);
  const redis = await RedisServer.start(t, { aof: false });
  const pages = await killOne(t, await redisCluster(t, redis), true);
  t.true(pages.flatMap((p) => p.finishes.filter((f) => f.resumed)).every((f) => f.recovered));
});
