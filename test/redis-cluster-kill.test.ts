// The Redis cluster engine when a node dies without a goodbye: a process SIGKILLed. Its users
// leave the presence directory within a few seconds, and once they reconnect to another
// node they are served there. (Durable messages across the kill: not covered here yet.)
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('redis-cluster-kill.test.ts');
const serial = unavailable === undefined ? test.serial : test.skip;

const HEALTH_MS = 500;

/** A node in a child process; killed (SIGKILL) when the test ends if still alive. */
async function nodeProcess(t: ExecutionContext, redis: RedisServer): Promise<{ nodeId: string; base: string; kill: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import=tsx', 'test/fixtures/redis-node.ts'], {
    env: { ...process.env, REDIS_URL: redis.url, HEALTH_MS: String(HEALTH_MS) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const ready = await new Promise<{ nodeId: string; port: number }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`node exited early (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; nodeId: string; port: number };
      if (msg.ready === true) resolve(msg);
    });
  });
  return {
    nodeId: ready.nodeId,
    base: `http://127.0.0.1:${ready.port}/sse/test`,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
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
