// Durable writes to a connection whose replay is running: a user with 3,000 pending messages
// opens a stream on node B while node A sends 400 more. Every message must reach the stream
// once, and each owner's messages in id order, whichever path brought them (B's replay, a
// send forwarded by A, a pull from A). Both engines, with real components: the Redis engine
// (Redis transport and a shared Redis store on a redis-server the test starts) and the LAN
// engine (HTTP transport on loopback, one SQLite file per node).
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hub } from '../lib/index.js';
import { eventually, introduce, SECRET } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('qos-replay-order.test.ts');
const redisSerial = unavailable === undefined ? test.serial : test.skip;

const PENDING = 3000;
const CONCURRENT = 400;
/** Sends per round while the replay runs: one round is one forwarded batch, rounds follow each other. */
const ROUND = 20;
/** Bounds the whole delivery on a busy 2-core machine (it takes about a second). */
const DELIVERY_MS = 60_000;
/** Resumes every retained log from the start: the stream asks for a replay of logs as well as its queues. */
const RESUME_ALL = '0'.repeat(26);

/**
 * How a stream received durable frames. Ids are 12 hex digits of milliseconds, 6 of a
 * sequence and 8 of the owner's tag (the store that minted it); one owner's ids sort in the
 * order it committed them. A duplicate is a frame whose id came before on the stream; an
 * inversion is a first frame of an id lower than the highest id already received from the
 * same owner (an older message written after a newer one).
 */
export function orderOf(ids: readonly string[]): { distinct: number; duplicates: number; inversions: number } {
  const seen = new Set<string>();
  const highest = new Map<string, string>();
  let duplicates = 0;
  let inversions = 0;
  for (const id of ids) {
    if (seen.has(id)) {
      duplicates++;
      continue;
    }
    seen.add(id);
    const owner = id.slice(-8);
    const top = highest.get(owner);
    if (top !== undefined && id < top) inversions++;
    else highest.set(owner, id);
  }
  return { distinct: seen.size, duplicates, inversions };
}

/** Sends `count` durable messages to user 7 from `hub`, `ROUND` at a time; answers their ids in send order. */
async function sendMany(hub: Hub, count: number, from: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += ROUND) {
    const round = Array.from({ length: Math.min(ROUND, count - i) }, (_, j) => hub.qos.sendByUserId(7, 'job', from + i + j));
    for (const r of await Promise.all(round)) ids.push(r.messageId);
  }
  return ids;
}

/**
 * The scenario of the report: `PENDING` messages wait for user 7; a stream opens on `b` with a
 * resume point; as soon as `b` has it, `a` sends `CONCURRENT` more, then one last marker. The
 * marker is the newest message of its owner: once it arrived, whatever a replay or the live
 * path wrote before it is in.
 */
async function replayWhileSending(t: ExecutionContext, a: StartedPlugin, b: StartedPlugin): Promise<void> {
  const pending = await sendMany(a.plugin.hub, PENDING, 0);
  t.is(pending.length, PENDING);
  let concurrent: Promise<string[]> | undefined;
  b.plugin.hub.once('connect', () => {
    concurrent = sendMany(a.plugin.hub, CONCURRENT, PENDING);
  });
  const stream = await RawStream.open(t, `${b.base}/connect?access-token=7&lastEventId=${RESUME_ALL}`);
  t.not(concurrent, undefined, 'the sends started as the stream opened');
  const during = await concurrent!;
  const marker = (await a.plugin.hub.qos.sendByUserId(7, 'end', 'marker')).messageId;
  await stream.next('end', DELIVERY_MS);

  const ids = stream.named('job').map((e) => e.id!);
  const order = orderOf([...ids, marker]);
  t.log(`${ids.length} frames for ${PENDING + CONCURRENT} messages: ${order.duplicates} duplicates, ${order.inversions} inversions`);
  t.is(order.duplicates, 0, 'no message written twice');
  t.is(order.inversions, 0, "each owner's messages in id order");
  t.deepEqual(new Set(ids), new Set([...pending, ...during]), 'every message, and nothing else');
  t.is(ids.length, PENDING + CONCURRENT);
  t.deepEqual([...a.errors, ...b.errors], []);
}

redisSerial('Redis engine: a replay on B while A sends: every message once, in id order', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const node = async (): Promise<StartedPlugin> => {
    const started = await startPlugin(t, { qos: { redis: redis.url }, cluster: { redis: redis.url, timeoutMs: 3000, healthIntervalMs: 500 } });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node();
  const b = await node();
  await eventually(() => a.plugin.hub.cluster!.peers().length === 1 && b.plugin.hub.cluster!.peers().length === 1, 'A and B see each other');
  await replayWhileSending(t, a, b);
});

test('LAN engine: a pull from A on B while A sends: every message once, in id order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-replay-order-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const node = async (name: string): Promise<StartedPlugin> => {
    const started = await startPlugin(t, {
      qos: { file: join(dir, `${name}.db`) },
      cluster: { secret: SECRET, timeoutMs: 3000, healthIntervalMs: 100 },
    });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  introduce([a.plugin.hub, b.plugin.hub]);
  await eventually(() => a.plugin.hub.cluster!.peers().length === 1 && b.plugin.hub.cluster!.peers().length === 1, 'A and B see each other');
  await replayWhileSending(t, a, b);
});

test('orderOf counts duplicates and inversions per owner', (t) => {
  const id = (ms: number, seq: number, tag: string): string => ms.toString(16).padStart(12, '0') + seq.toString(16).padStart(6, '0') + tag;
  const [a1, a2, a3] = [id(1, 0, 'aaaaaaaa'), id(1, 1, 'aaaaaaaa'), id(2, 0, 'aaaaaaaa')];
  const b1 = id(0, 0, 'bbbbbbbb');
  t.deepEqual(orderOf([a1, a2, b1, a3]), { distinct: 4, duplicates: 0, inversions: 0 }, 'owners interleave freely');
  t.deepEqual(orderOf([a1, a3, a2, a3]), { distinct: 3, duplicates: 1, inversions: 1 });
});
