// The Redis cluster engine when a node dies without a goodbye: a process SIGKILLed, three nodes
// on one real redis-server. Its users leave the presence directory within a few seconds, and
// once they reconnect to another node they are served there. With the Redis durable store
// (`qos: { redis }`, AOF on) nothing durable the killed node held is lost: messages sent through
// it and written live to a client that had not acked yet, messages sent through it to an offline
// user, and a message sent through a survivor to a stream on the killed node all reach their
// user on a surviving node, exactly once, and acking them there removes them from Redis.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { postJson, startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream, type Received } from './helpers/stream.js';

const { unavailable } = redisTest('redis-cluster-kill.test.ts');
const serial = unavailable === undefined ? test.serial : test.skip;

const HEALTH_MS = 500;

interface NodeProcess {
  nodeId: string;
  base: string;
  kill: () => Promise<void>;
  /** A stdin command of test/fixtures/redis-node.ts (QOS=redis), resolved with its answer. */
  command: (cmd: Record<string, unknown>) => Promise<Record<string, unknown>>;
}

/** A node in a child process (`qos`: with the Redis durable store); killed (SIGKILL) when the test ends if still alive. */
async function nodeProcess(t: ExecutionContext, redis: RedisServer, qos = false): Promise<NodeProcess> {
  const child = spawn(process.execPath, ['--import=tsx', 'test/fixtures/redis-node.ts'], {
    env: { ...process.env, REDIS_URL: redis.url, HEALTH_MS: String(HEALTH_MS), ...(qos ? { QOS: 'redis' } : {}) },
    stdio: [qos ? 'pipe' : 'ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const answers = new Map<number, (answer: Record<string, unknown>) => void>();
  let seq = 0;
  const ready = await new Promise<{ nodeId: string; port: number }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`node exited early (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; nodeId: string; port: number; seq?: number };
      if (msg.ready === true) resolve(msg);
      if (msg.seq !== undefined) answers.get(msg.seq)?.(msg);
    });
  });
  return {
    nodeId: ready.nodeId,
    base: `http://127.0.0.1:${ready.port}/sse/test`,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    command: async (cmd) => {
      const n = ++seq;
      const answer = new Promise<Record<string, unknown>>((resolve) => answers.set(n, resolve));
      child.stdin!.write(JSON.stringify({ ...cmd, seq: n }) + '\n');
      const got = await answer;
      answers.delete(n);
      if (typeof got.error === 'string') throw new Error(got.error);
      return got;
    },
  };
}

serial('a SIGKILLed node: its users leave isOnline within seconds, its keys go, and they are served where they reconnect', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const a = await startPlugin(t, { cluster: { redis: redis.url, healthIntervalMs: HEALTH_MS, timeoutMs: 1000 } });
  const hub = a.plugin.hub;
  hub.on('peer-error', () => undefined);
  await hub.ready();
  const [b, c] = await Promise.all([nodeProcess(t, redis), nodeProcess(t, redis)]);
  await eventually(() => hub.cluster!.peers().length === 2, 'A sees B and C', 10_000);
  await RawStream.open(t, `${b.base}/connect?access-token=1`);
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=2`);
  await eventually(async () => (await hub.isOnline(1)) && (await hub.isOnline(2)), 'both users online');
  t.is(await hub.sendByUserId([1, 2], 'bell', 1), 2);
  await onC.next('bell');

  const killedAt = Date.now();
  await c.kill();
  // Until C's beat expires a send may still name it; it must not hang nor count C's user.
  t.is(await hub.sendByUserId([1, 2], 'bell', 2), 1);
  await eventually(async () => !(await hub.isOnline(2)), 'user 2 leaves isOnline', 10_000);
  t.log(`user of the killed node left isOnline after ${Date.now() - killedAt} ms (beat ${HEALTH_MS} ms, ttl ${3 * HEALTH_MS} ms)`);
  t.true(await hub.isOnline(1));
  await eventually(() => hub.cluster!.peers().length === 1 && hub.cluster!.unreachable().length === 0, 'C dropped');
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  await eventually(async () => (await probe.keys(`*{${c.nodeId}}*`)).length === 0, "C's directory keys removed");
  t.is(await probe.hexists('{sse:test}:hello', c.nodeId), 0);

  // User 2 comes back on B: found, and reached from A.
  const again = await RawStream.open(t, `${b.base}/connect?access-token=2`);
  await eventually(async () => hub.isOnline(2), 'user 2 online again on B');
  t.is(await hub.sendByUserId(2, 'bell', 3), 1);
  t.deepEqual(JSON.parse((await again.next('bell')).data), 3);
  t.deepEqual((await hub.getUserIds()).sort(), ['1', '2']);
});

/** A in this process, B and C in child processes; all on one Redis (AOF) as cluster engine and durable store. */
async function threeDurableNodes(t: ExecutionContext): Promise<{ a: StartedPlugin; b: NodeProcess; c: NodeProcess }> {
  const redis = await RedisServer.start(t);
  const a = await startPlugin(t, { cluster: { redis: redis.url, healthIntervalMs: HEALTH_MS, timeoutMs: 1000 }, qos: { redis: redis.url } });
  a.plugin.hub.on('peer-error', () => undefined);
  await a.plugin.hub.ready();
  const [b, c] = await Promise.all([nodeProcess(t, redis, true), nodeProcess(t, redis, true)]);
  await eventually(() => a.plugin.hub.cluster!.peers().length === 2, 'A sees B and C', 15_000);
  return { a, b, c };
}

/** Sends a durable `offer` through a child node. */
async function sendThrough(node: NodeProcess, userId: string, data: unknown): Promise<{ messageId: string; delivered: number }> {
  return (await node.command({ send: { userIds: [userId], event: 'offer', data } })) as { messageId: string; delivered: number };
}

/** `offer` events as id -> payload, for exact comparison. */
function offers(events: Received[]): Record<string, unknown> {
  return Object.fromEntries(events.map((e) => [e.id!, JSON.parse(e.data)]));
}

/** Waits for the `offer` events with exactly `ids`, then checks with a marker sent after them that none came twice. */
async function receiveExactly(t: ExecutionContext, a: StartedPlugin, stream: RawStream, ids: string[]): Promise<Record<string, unknown>> {
  await stream.until(() => ids.every((id) => stream.named('offer').some((e) => e.id === id)), `offers ${ids.join(', ')}`, 15_000);
  t.is(await a.plugin.hub.sendByConnectionId(stream.connectionId, 'end', 1), 1);
  await stream.next('end', 15_000);
  t.deepEqual(
    stream
      .named('offer')
      .map((e) => e.id)
      .sort(),
    [...ids].sort(),
    'each pending message once, nothing else',
  );
  return offers(stream.named('offer'));
}

serial('durable messages of a SIGKILLed node: pending live ones reach their user on C, offline ones on A, acks remove them from Redis', async (t) => {
  const { a, b, c } = await threeDurableNodes(t);
  const hub = a.plugin.hub;

  // User 1 acknowledges by itself (ack=1) and never does here: what B wrote stays pending.
  const first = await RawStream.open(t, `${b.base}/connect?access-token=1&ack=1`);
  await eventually(async () => hub.isOnline(1), 'user 1 online on B', 15_000);
  const live = [await sendThrough(b, '1', { n: 1 }), await sendThrough(b, '1', { n: 2 })];
  t.deepEqual(
    live.map((s) => s.delivered),
    [1, 1],
  );
  const liveIds = live.map((s) => s.messageId);
  await first.until(() => first.named('offer').length === 2, 'both live offers on B', 15_000);
  t.deepEqual(offers(first.named('offer')), { [liveIds[0]!]: { n: 1 }, [liveIds[1]!]: { n: 2 } });
  // User 3 is offline: stored in Redis through B.
  const stored = [await sendThrough(b, '3', { n: 3 }), await sendThrough(b, '3', { n: 4 })];
  t.deepEqual(
    stored.map((s) => s.delivered),
    [0, 0],
  );
  const storedIds = stored.map((s) => s.messageId);
  for (const id of [...liveIds, ...storedIds]) t.is((await hub.qos.status(id))?.targets.length, 1, `${id} pending, seen from A`);

  await b.kill();
  await eventually(async () => !(await hub.isOnline(1)), "the killed node's user leaves isOnline", 15_000);

  // User 1 comes back on C: both unacked messages, once each, with their ids and payloads.
  const back = await RawStream.open(t, `${c.base}/connect?access-token=1&ack=1`);
  t.deepEqual(await receiveExactly(t, a, back, liveIds), { [liveIds[0]!]: { n: 1 }, [liveIds[1]!]: { n: 2 } });
  const acked = await postJson(`${c.base}/connect/ack.do?access-token=1`, { connectionId: back.connectionId, ids: liveIds });
  t.deepEqual(acked.body.data, { acked: 2 });
  for (const id of liveIds) t.is(await hub.qos.status(id), undefined, `${id} gone from Redis, seen from A`);
  t.is((await hub.qos.list({ userId: '1' }, 0, 10)).total, 0);

  // User 3 connects to A: both stored messages; acked there, gone as C sees it.
  const third = await RawStream.open(t, `${a.base}/connect?access-token=3&ack=1`);
  t.deepEqual(await receiveExactly(t, a, third, storedIds), { [storedIds[0]!]: { n: 3 }, [storedIds[1]!]: { n: 4 } });
  const acked3 = await postJson(`${a.base}/connect/ack.do?access-token=3`, { connectionId: third.connectionId, ids: storedIds });
  t.deepEqual(acked3.body.data, { acked: 2 });
  for (const id of storedIds) t.is((await c.command({ status: id })).targets, null, `${id} gone from Redis, seen from C`);
  t.is((await hub.qos.list({ userId: '3' }, 0, 10)).total, 0);
  t.deepEqual(a.errors, []);
});

serial('a durable message sent through A to a stream on B, B SIGKILLed before the ack: the client gets it on C', async (t) => {
  const { a, b, c } = await threeDurableNodes(t);
  const hub = a.plugin.hub;
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=5&ack=1`);
  await eventually(async () => hub.isOnline(5), 'user 5 online on B', 15_000);
  const sent = await hub.qos.sendByUserId(5, 'offer', { n: 5 });
  t.is(sent.delivered, 1, 'written live on B through the cluster');
  t.deepEqual(offers([await onB.next('offer', 15_000)]), { [sent.messageId]: { n: 5 } });
  t.is((await hub.qos.status(sent.messageId))?.targets.length, 1, 'pending until acked');

  await b.kill();
  await eventually(async () => !(await hub.isOnline(5)), "the killed node's user leaves isOnline", 15_000);
  const back = await RawStream.open(t, `${c.base}/connect?access-token=5&ack=1`);
  t.deepEqual(await receiveExactly(t, a, back, [sent.messageId]), { [sent.messageId]: { n: 5 } });
  const acked = await postJson(`${c.base}/connect/ack.do?access-token=5`, { connectionId: back.connectionId, ids: [sent.messageId] });
  t.deepEqual(acked.body.data, { acked: 1 });
  t.is(await hub.qos.status(sent.messageId), undefined, 'gone from Redis, seen from A');
  t.is((await c.command({ status: sent.messageId })).targets, null, 'gone from Redis, seen from C');
  t.deepEqual(a.errors, []);
});
