// The Redis cluster engine: three real nodes (HTTP servers in this process) over a real
// redis-server started by the test. Fan-out with counts, queries from the presence
// directory, Redis paused and restarted under load. The SIGKILL case is in
// redis-cluster-kill.test.ts (it needs processes).
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDIS_DISCOVERY } from '../lib/cluster/cluster-options.js';
import type { Discovery, SelfDescription } from '../lib/cluster/discovery.js';
import { mergeQuery } from '../lib/cluster/merge.js';
import type { QueryName } from '../lib/core/queries.js';
import { createHub, type Hub, type SsePluginOptions } from '../lib/index.js';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { postJson, startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('redis-cluster.test.ts');
const serial = unavailable === undefined ? test.serial : test.skip;

type ClusterOpts = NonNullable<SsePluginOptions['cluster']>;

// Loose enough for a busy 2-core machine (a beat of 500 ms: a node is dropped after 1.5 s
// silent); a stalled Redis must still cost at most this long.
const TIMEOUT_MS = 1000;

interface Node extends StartedPlugin {
  hub: Hub;
  /** Operations this node asked of peers directly (not answered from the directory). */
  rpcs: string[];
  /** Operations whose peer part was reported missing (`peer-error`). */
  peerErrors: string[];
}

async function node(t: ExecutionContext, redis: RedisServer, extra: Partial<ClusterOpts> = {}): Promise<Node> {
  const started = await startPlugin(t, { cluster: { redis: redis.url, timeoutMs: TIMEOUT_MS, healthIntervalMs: 500, ...extra } });
  const hub = started.plugin.hub;
  await hub.ready();
  const rpcs: string[] = [];
  hub.on('peer-rpc', (info) => rpcs.push(info.operation));
  const peerErrors: string[] = [];
  hub.on('peer-error', (info) => peerErrors.push(info.operation));
  return { ...started, hub, rpcs, peerErrors };
}

async function threeNodes(t: ExecutionContext, redis: RedisServer): Promise<Node[]> {
  const nodes = [await node(t, redis), await node(t, redis), await node(t, redis)];
  for (const n of nodes) await eventually(() => n.hub.cluster!.peers().length === 2, 'three nodes see each other');
  return nodes;
}

const sorted = (list: string[]): string[] => [...list].sort();

serial('a send on A reaches users on B and C once, with the cluster-wide count', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b, c] = await threeNodes(t, redis);
  const onB = await RawStream.open(t, `${b!.base}/connect?access-token=7@1`);
  const onC = await RawStream.open(t, `${c!.base}/connect?access-token=7@1`);
  await RawStream.open(t, `${c!.base}/connect?access-token=8@2`);
  t.is(await a!.hub.sendByUserId(7, 'bell', { n: 1 }), 2);
  t.deepEqual(JSON.parse((await onB.next('bell')).data), { n: 1 });
  t.deepEqual(JSON.parse((await onC.next('bell')).data), { n: 1 });
  // A repeated key and overlapping targets still count each connection once.
  t.is(await a!.hub.sendByUserId([7, '7', 8], 'bell', 2), 3);
  t.is(await a!.hub.sendAll('all', 3), 3);
  t.is(await a!.hub.sendByTenantId(2, 'tenant', 4), 1);
  t.is(await b!.hub.sendByConnectionId(onC.connectionId, 'one', 5), 1);
  t.deepEqual(JSON.parse((await onC.next('one')).data), 5);
  // Several sends in one tick: one message for all peers, each with its own count.
  const counts = await Promise.all([a!.hub.sendByUserId(7, 'x', 1), a!.hub.sendByUserId(8, 'x', 2), a!.hub.sendByUserId(9, 'x', 3)]);
  t.deepEqual(counts, [2, 1, 0]);
});

serial('a fan-out to every peer is one PUBLISH on the broadcast channel, plus one answer per peer', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b, c] = await threeNodes(t, redis);
  await RawStream.open(t, `${b!.base}/connect?access-token=1`);
  await RawStream.open(t, `${c!.base}/connect?access-token=1`);
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  const publishes = async (): Promise<number> => Number(/cmdstat_publish:calls=(\d+)/.exec(await probe.info('commandstats'))?.[1] ?? 0);
  await probe.config('RESETSTAT');
  // Three sends in one tick: coalesced into one request, broadcast once.
  t.deepEqual(await Promise.all([a!.hub.sendAll('x', 1), a!.hub.sendByUserId(1, 'x', 2), a!.hub.sendByUserId(2, 'x', 3)]), [2, 2, 0]);
  t.is(await publishes(), 3);
});

serial('queries answer from the directory, equal to what the nodes hold, without asking them', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b, c] = await threeNodes(t, redis);
  const s1 = await RawStream.open(t, `${b!.base}/connect?access-token=1@t1&channel=news&listeners=bell`);
  await RawStream.open(t, `${b!.base}/connect?access-token=1@t1`);
  await RawStream.open(t, `${c!.base}/connect?access-token=2@t2&channel=sport`);
  await RawStream.open(t, `${a!.base}/connect?access-token=3@t1&listeners=bell`);
  await eventually(async () => (await a!.hub.getConnectionCount()) === 4, 'directory written');
  a!.rpcs.length = 0;
  t.true(await a!.hub.isOnline(2));
  t.false(await a!.hub.isOnline(4));
  t.deepEqual(sorted(await a!.hub.getUserIds()), ['1', '2', '3']);
  t.deepEqual(sorted((await a!.hub.getUsers()).map((u) => String(u.id))), ['1', '2', '3']);
  t.is((await a!.hub.getUser(1))?.name, 'User 1');
  t.deepEqual(sorted(await a!.hub.getAccessTokens()), ['1@t1', '2@t2', '3@t1']);
  t.deepEqual(sorted(await a!.hub.getTenantIds()), ['t1', 't2']);
  t.deepEqual(sorted(await a!.hub.getChannels()), ['news', 'sport']);
  t.deepEqual(sorted(await a!.hub.getUserIdsListening('bell')), ['1', '3']);
  t.deepEqual(sorted(await a!.hub.getUserIdsListening('bell', 't1')), ['1', '3']);
  t.is((await a!.hub.getConnectionIds()).length, 4);
  t.deepEqual(a!.rpcs, [], 'no peer was asked');
  // Listings with live counters: asked of the holder only.
  const info = await a!.hub.getConnectionById(s1.connectionId);
  t.is(info?.userId, '1');
  t.deepEqual(a!.rpcs, ['query']);
  a!.rpcs.length = 0;
  t.is((await a!.hub.getConnections({ channel: 'sport' })).length, 1);
  t.deepEqual(a!.rpcs, ['query'], 'only C holds channel sport');
  t.is((await a!.hub.getConnections()).length, 4);
  // Listener changes and closes reach the directory.
  await b!.hub.changeListeners(s1.connectionId, ['bell'], false);
  await eventually(async () => sorted(await a!.hub.getUserIdsListening('bell')).join() === '3', 'listener change written');
  void s1.close();
  await eventually(async () => (await a!.hub.getConnectionCount()) === 3, 'close written');
  t.true(await a!.hub.isOnline(1), 'user 1 still has a stream on B');
  t.deepEqual(sorted(await a!.hub.getChannels()), ['sport']);
  // Every query answered through the directory equals the merge of what each node holds.
  await eventually(async () => (await a!.hub.getConnectionCount()) === 3, 'settled');
  const cases: [QueryName, unknown[]][] = [
    ['userIds', []],
    ['users', []],
    ['accessTokens', []],
    ['tenantIds', []],
    ['channels', []],
    ['connectionCount', []],
    ['connectionIds', []],
    ['isOnline', ['2']],
    ['isOnline', ['9']],
    ['user', ['2']],
    ['user', ['9']],
    ['userIdsListening', ['bell', null]],
    ['userIdsListening', ['bell', 't2']],
    ['connections', [{ tenantId: 't1' }]],
    ['connectionById', [s1.connectionId]],
  ];
  const norm = (v: unknown): unknown => (Array.isArray(v) ? v.map((x) => JSON.stringify(x)).sort() : v);
  for (const [name, args] of cases) {
    const merged = mergeQuery(
      name,
      [a, b, c].map((n) => n!.hub.localQuery(name, args as never)),
    );
    const answer = await a!.hub.queryDetailed(name, args as never);
    t.false(answer.partial, name);
    // Counters of a live connection move between two reads; compare what identifies it.
    const strip = (v: unknown): unknown => norm(Array.isArray(v) ? v.map((x: { id?: string }) => x?.id ?? x) : v);
    t.deepEqual(strip(answer.value), strip(merged), `${name}(${JSON.stringify(args)})`);
  }
});

serial('a reconnect storm: the directory follows hundreds of opens and closes, written in pipelines', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b] = await threeNodes(t, redis);
  const N = 300;
  const open = (): Promise<RawStream[]> =>
    Promise.all(Array.from({ length: N }, (_, i) => RawStream.open(t, `${b!.base}/connect?access-token=${i % 100}@t${i % 7}&channel=c${i % 5}`)));
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  await probe.config('RESETSTAT');
  let streams = await open();
  await eventually(async () => (await a!.hub.getConnectionCount()) === N, 'all opens written');
  t.is((await a!.hub.getUserIds()).length, 100);
  // Coalesced per tick: far fewer round trips than one per stream and key.
  const calls = (name: string, info: string): number => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  const stats = await probe.info('commandstats');
  t.log(`hset calls ${calls('hset', stats)}, sadd calls ${calls('sadd', stats)} for ${N} opens`);
  await Promise.all(streams.map((s) => s.close()));
  await eventually(async () => (await a!.hub.getConnectionCount()) === 0, 'all closes written');
  t.deepEqual(await a!.hub.getUserIds(), []);
  t.deepEqual(await a!.hub.getChannels(), []);
  // And again: what the directory says equals what B holds.
  streams = await open();
  await Promise.all(streams.slice(0, N / 2).map((s) => s.close()));
  await eventually(() => b!.hub.localQuery('connectionCount') === N / 2, 'half closed on B');
  await eventually(async () => (await a!.hub.getConnectionCount()) === N / 2, 'directory follows');
  t.deepEqual(sorted(await a!.hub.getUserIds()), sorted(b!.hub.localQuery('userIds')));
  t.deepEqual(sorted(await a!.hub.getTenantIds()), sorted(b!.hub.localQuery('tenantIds')));
  t.deepEqual(sorted(await a!.hub.getChannels()), sorted(b!.hub.localQuery('channels')));
});

serial('a node that closes leaves at once: its users vanish, its keys are removed', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b] = await threeNodes(t, redis);
  await RawStream.open(t, `${b!.base}/connect?access-token=5`);
  await eventually(async () => a!.hub.isOnline(5), 'user 5 online');
  await b!.plugin.close();
  await eventually(() => a!.hub.cluster!.peers().length === 1, 'b gone');
  t.false(await a!.hub.isOnline(5));
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  t.deepEqual(await probe.keys(`*{${b!.hub.cluster!.nodeId}}*`), []);
});

/** A discovery that records what the Redis transport tells it. */
class ToldDiscovery implements Discovery {
  self: SelfDescription | undefined;
  readonly told: string[][] = [];
  closed = false;
  start(self: SelfDescription): void {
    this.self = self;
  }
  verified(nodeIds: readonly string[]): void {
    this.told.push([...nodeIds].sort());
  }
  close(): void {
    this.closed = true;
  }
}

serial('a node tells its discovery the peers a send counts, after each change (the workers primary waits for them)', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [da, db] = [new ToldDiscovery(), new ToldDiscovery()];
  const a = await node(t, redis, { nodeId: 'a', [REDIS_DISCOVERY]: da });
  // Known with no address, under its engine's prefix; alone so far.
  t.deepEqual(da.self, { nodeId: 'a', group: 'redis:sse:test', host: '', port: 0 });
  t.deepEqual(da.told, [[]]);
  const b = await node(t, redis, { nodeId: 'b', [REDIS_DISCOVERY]: db });
  // b saw a in its first beat, before its start resolved; a sees b in its next beat.
  t.deepEqual(db.told.at(-1), ['a']);
  await eventually(() => da.told.at(-1)?.[0] === 'b', 'a counts b');
  t.deepEqual(da.told, [[], ['b']]);
  t.deepEqual(
    a.hub.cluster!.peers().map((p) => p.nodeId),
    ['b'],
  );
  await b.plugin.close();
  t.true(db.closed);
  // b said bye before its discovery closed; a no longer counts it.
  await eventually(() => da.told.length > 2 && da.told.at(-1)!.length === 0, 'a drops b');
});

serial('Redis paused (SIGSTOP) past the timeouts: local sends work, cluster calls fail fast, then all resumes', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b] = await threeNodes(t, redis);
  const onA = await RawStream.open(t, `${a!.base}/connect?access-token=1`);
  const onB = await RawStream.open(t, `${b!.base}/connect?access-token=1`);
  await eventually(async () => (await a!.hub.getConnectionCount()) === 2, 'directory written');
  redis.pause();
  t.teardown(() => redis.resume());
  // Sends resolve (never hang) with the local part; the peers' part is failed, not silently 0.
  const during = await a!.hub.sendByUserId(1, 'during', 1);
  t.is(during, 1);
  await onA.next('during');
  await eventually(() => a!.hub.cluster!.peers().length === 0, 'peers unreachable after a failed beat', 5000);
  t.is(a!.hub.cluster!.unreachable().length, 2);
  const detailed = await a!.hub.queryDetailed('connectionCount');
  t.true(detailed.partial);
  t.is(detailed.value, 1);
  t.is(await a!.hub.sendByUserId(1, 'during', 2), 1, 'fail fast once known down');
  redis.resume();
  await eventually(() => a!.hub.cluster!.peers().length === 2, 'peers back', 10_000);
  await eventually(async () => (await a!.hub.sendByUserId(1, 'after', 3)) === 2, 'cross-node sends again', 10_000);
  await onB.next('after');
  await eventually(async () => (await a!.hub.getConnectionCount()) === 2, 'directory answers again');
});

serial('Redis restarted under load: sends never hang, then the nodes re-announce and rewrite their entries', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b, c] = await threeNodes(t, redis);
  await RawStream.open(t, `${b!.base}/connect?access-token=1`);
  await RawStream.open(t, `${c!.base}/connect?access-token=2`);
  await eventually(async () => (await a!.hub.getConnectionCount()) === 2, 'directory written');
  let sends = 0;
  let short = 0;
  let stop = false;
  a!.peerErrors.length = 0;
  const load = (async () => {
    while (!stop) {
      const n = await a!.hub.sendAll('tick', sends);
      t.true(n >= 0 && n <= 2);
      if (n < 2) short++;
      sends++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  // Redis comes back empty (no AOF): membership and the directory must be written again.
  await redis.restart(true);
  await eventually(() => a!.hub.cluster!.peers().length === 2, 'peers back after the restart', 10_000);
  await eventually(async () => sorted(await a!.hub.getUserIds()).join() === '1,2', 'directory rewritten', 10_000);
  await eventually(async () => (await a!.hub.sendAll('after', 1)) === 2, 'sends reach both again', 10_000);
  stop = true;
  await load;
  t.true(sends > 0);
  // Never silently short: every send that missed a peer reported that peer (one send per request here).
  t.true(short > 0, 'some sends happened while Redis was down');
  t.true(a!.peerErrors.filter((op) => op === 'send').length >= short);
  t.log(`${sends} sends during the restart, ${short} reached fewer than both peers, each reported`);
});

serial('an ioredis client as the source: duplicated for the engine, left open for its owner', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const client = new Redis(redis.url);
  t.teardown(() => client.disconnect());
  const a = await node(t, redis, { redis: client });
  const b = await node(t, redis, { redis: client });
  await eventually(() => a.hub.cluster!.peers().length === 1, 'peers');
  await RawStream.open(t, `${b.base}/connect?access-token=1`);
  t.is(await a.hub.sendByUserId(1, 'x', 1), 1);
  await b.plugin.close();
  t.is(await client.ping(), 'PONG');
});

serial('a node started while Redis is down serves locally, and joins when Redis comes up', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const a = await node(t, redis);
  await redis.stop();
  const started = await startPlugin(t, { cluster: { redis: redis.url, timeoutMs: TIMEOUT_MS, healthIntervalMs: 500 } });
  const b = started.plugin.hub;
  b.on('error', () => undefined);
  b.on('peer-error', () => undefined);
  const ready = b.ready().then(
    () => 'ready',
    (err: { code?: string }) => err.code,
  );
  const onB = await RawStream.open(t, `${started.base}/connect?access-token=1`);
  t.is(await b.sendByUserId(1, 'local', 1), 1);
  await onB.next('local');
  t.is(await ready, 'ERR_SSE_REDIS_UNAVAILABLE');
  await redis.restart();
  await eventually(() => b.cluster!.peers().length === 1 && a.hub.cluster!.peers().length === 1, 'joined after Redis came up', 10_000);
  await eventually(async () => a.hub.isOnline(1), "B's directory written");
  t.is(await a.hub.sendByUserId(1, 'remote', 2), 1);
  await onB.next('remote');
});

serial('durable messages over the Redis transport: forwarded, pulled when the user comes back, acked at the owner', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const dir = mkdtempSync(join(tmpdir(), 'sse-rcluster-qos-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = await startPlugin(t, { qos: { file: join(dir, 'a.db') }, cluster: { redis: redis.url, timeoutMs: TIMEOUT_MS, healthIntervalMs: 500 } });
  await a.plugin.hub.ready();
  const b = await node(t, redis);
  await eventually(() => a.plugin.hub.cluster!.peers().length === 1 && b.hub.cluster!.peers().length === 1, 'peers');
  const live = await RawStream.open(t, `${b.base}/connect?access-token=7&ack=1`);
  const sent = await a.plugin.hub.qos.sendByUserId(7, 'job', { n: 1 });
  t.is(sent.delivered, 1);
  t.is((await live.next('job')).id, sent.messageId);
  // Offline now: the message waits at its owner (A) and is pulled by B when the user opens there.
  const offline = await a.plugin.hub.qos.sendByUserId(8, 'job', { n: 2 });
  t.is(offline.delivered, 0);
  const later = await RawStream.open(t, `${b.base}/connect?access-token=8&ack=1`);
  t.is((await later.next('job')).id, offline.messageId);
  const acked = new Promise((resolve) => a.plugin.hub.once('qos-acked', resolve));
  const res = await postJson(`${b.base}/connect/ack.do?access-token=8`, { connectionId: later.connectionId, ids: [offline.messageId] });
  t.is(res.status, 200);
  t.like(await acked, { messageId: offline.messageId });
});

serial('runtime channel joins and leaves reach the directory', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b] = await threeNodes(t, redis);
  const s = await RawStream.open(t, `${b!.base}/connect?access-token=1&channel=fixed`);
  await eventually(async () => sorted(await a!.hub.getChannels()).join() === 'fixed', 'fixed channel');
  await b!.hub.joinChannel({ connectionId: s.connectionId }, ['room:1', 'room:2']);
  await eventually(async () => sorted(await a!.hub.getChannels()).join() === 'fixed,room:1,room:2', 'joined');
  await b!.hub.leaveChannel({ connectionId: s.connectionId }, 'room:1');
  await eventually(async () => sorted(await a!.hub.getChannels()).join() === 'fixed,room:2', 'left');
  await s.close();
  await eventually(async () => (await a!.hub.getChannels()).length === 0, 'closed');
  t.deepEqual(await a!.hub.getChannels(), []);
});

serial('contradictory or bad options throw a TypeError at once', (t) => {
  const redis = 'redis://127.0.0.1:1';
  t.throws(() => createHub({ cluster: { redis, secret: 'x'.repeat(40) } }), { instanceOf: TypeError, message: /cluster\.secret/ });
  t.throws(() => createHub({ cluster: { redis, peers: ['127.0.0.1:1'] } }), { instanceOf: TypeError, message: /cluster\.peers/ });
  t.throws(() => createHub({ cluster: { redis, discovery: 'mdns' } }), { instanceOf: TypeError });
  t.throws(() => createHub({ cluster: { redis, port: 1 } }), { instanceOf: TypeError });
  t.throws(() => createHub({ cluster: { redis: 'http://x' } }), { instanceOf: TypeError, message: /redis:\/\// });
  t.throws(() => createHub({ cluster: { redis, redisPrefix: '' } }), { instanceOf: TypeError });
  t.throws(() => createHub({ cluster: { secret: 'x'.repeat(40), redisPrefix: 'p' } }), { instanceOf: TypeError, message: /redisPrefix/ });
});
