// A send whose window entry never reached Redis (its XADD failed: the node lost its Redis
// connection for a moment) is a hole in the cluster's history. A page that resumes from before
// it must hear `recovered: false`, on the node that sent it and on any other, not a quiet
// `recovered: true` without the event. Real redis-server; node a reaches it through a loopback
// proxy the test cuts, node b directly.
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('recovery-redis-hole.test.ts');
const serial = unavailable === undefined ? test.serial : test.skip;

/**
 * A loopback TCP proxy to `port` that the test can cut (every connection closed, new ones
 * refused) and heal, and that can hold what the client writes for `delay(ms)` (in order: a
 * process whose writes leave late).
 */
async function testProxy(
  t: ExecutionContext,
  port: number,
): Promise<{ url: string; cut: () => void; heal: () => void; delay: (ms: number) => void }> {
  const sockets = new Set<net.Socket>();
  let refusing = false;
  let delayMs = 0;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    // Client to Redis through a queue released in order, each chunk no earlier than its delay.
    const queue: { at: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const drain = (): void => {
      timer = undefined;
      while (queue.length > 0 && queue[0]!.at <= Date.now()) upstream.write(queue.shift()!.chunk);
      if (queue.length > 0) timer = setTimeout(drain, queue[0]!.at - Date.now());
    };
    client.on('data', (chunk: Buffer) => {
      queue.push({ at: Math.max(Date.now() + delayMs, queue.at(-1)?.at ?? 0), chunk });
      if (timer === undefined) drain();
    });
    upstream.pipe(client);
    const end = (): void => {
      clearTimeout(timer);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut: () => {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    heal: () => {
      refusing = false;
    },
    delay: (ms) => {
      delayMs = ms;
    },
  };
}

const TIMEOUT_MS = 500;
/** How far before a resume point a cluster replays (and so where a hole matters): `timeoutMs + 1 s`. */
const SLACK_MS = TIMEOUT_MS + 1000;

const finishOf = (s: RawStream): { recovered: boolean } => JSON.parse(s.named('connect-finish')[0]!.data);

async function node(t: ExecutionContext, url: string): Promise<StartedPlugin> {
  const started = await startPlugin(t, { cluster: { redis: url, healthIntervalMs: 300, timeoutMs: TIMEOUT_MS } });
  await started.plugin.hub.ready();
  return started;
}

serial('a send whose window XADD failed: a resume point before it is recovered false on every node, one after it true', async (t) => {
  t.timeout(60_000);
  const redis = await RedisServer.start(t, { aof: false });
  const proxy = await testProxy(t, redis.port);
  const a = await node(t, proxy.url);
  const b = await node(t, redis.url);
  const errors: unknown[] = [];
  a.plugin.hub.on('error', (err) => errors.push(err));
  const client = new Redis(redis.url);
  t.teardown(() => client.quit().then(() => undefined));

  const first = await RawStream.open(t, `${a.base}/connect?access-token=1`);
  await a.plugin.hub.sendByUserId('1', 'bell', 'before');
  const seen = await first.next('bell');
  await first.close();
  // The send's entry is written before it is published, but a's own page got it without Redis.
  let key: string | undefined;
  await eventually(async () => (key = (await client.keys('*:window'))[0]) !== undefined, 'the Stream');

  // a loses Redis: the XADD of its next send fails (no offline queue), the send goes on locally.
  proxy.cut();
  await a.plugin.hub.sendByUserId('1', 'bell', 'lost').catch(() => 0);
  await eventually(() => errors.length > 0, "a's report of the failed window write");
  proxy.heal();
  // a is back: its sends reach the Stream again.
  const length = (): Promise<number> => client.xlen(key!);
  const before = await length();
  let n = 0;
  await eventually(
    async () => {
      await a.plugin.hub.sendByUserId('2', 'bell', `after${n++}`).catch(() => 0);
      await delay(50);
      return (await length()) > before;
    },
    "a's sends in the Stream again",
    20_000,
  );
  // Sends made while a reconnected are holes too: the positive case below starts after them.
  const healedAt = Date.now();
  const stream = await client.xrange(key!, '-', '+');
  t.false(
    stream.some(([, f]) => f.some((v) => v.includes('lost'))),
    'the send is not in the Stream: a real hole',
  );

  for (const [name, at] of [
    ['b', b],
    ['a', a],
  ] as const) {
    const back = await RawStream.open(t, `${at.base}/connect?access-token=1&recover=${encodeURIComponent(seen.id!)}`);
    t.false(finishOf(back).recovered, `resumed on ${name} from before the hole: recovered false`);
    await back.close();
  }

  // A resume point whose replay range starts after the hole is recovered as before.
  await delay(Math.max(0, healedAt + SLACK_MS + 200 - Date.now()));
  const later = await RawStream.open(t, `${a.base}/connect?access-token=1`);
  await a.plugin.hub.sendByUserId('1', 'bell', 'later');
  const laterSeen = await later.next('bell');
  await later.close();
  await b.plugin.hub.sendByUserId('1', 'bell', 'missed');
  const back = await RawStream.open(t, `${b.base}/connect?access-token=1&recover=${encodeURIComponent(laterSeen.id!)}`);
  t.true(finishOf(back).recovered, 'resumed from after the hole: recovered true');
  await back.until(() => back.named('bell').some((e) => e.data === 'missed'), 'the missed send');
});

serial(
  'a send that reaches Redis long after its id was given (its sender stalled, its XADD timed out) is replayed to a page that left meanwhile, recovered true',
  async (t) => {
    t.timeout(60_000);
    const redis = await RedisServer.start(t, { aof: false });
    const proxy = await testProxy(t, redis.port);
    const a = await node(t, proxy.url);
    const b = await node(t, redis.url);
    a.plugin.hub.on('error', () => undefined);
    const client = new Redis(redis.url);
    t.teardown(() => client.quit().then(() => undefined));

    const page = await RawStream.open(t, `${b.base}/connect?access-token=1`);
    await b.plugin.hub.sendByUserId('1', 'bell', 'b0');
    await page.next('bell');
    // a's writes leave 4 s late from now on: its next send gets its id now, reaches Redis (and b) later.
    proxy.delay(4000);
    const sentAt = Date.now();
    void a.plugin.hub.sendByUserId('1', 'bell', 'slow').catch(() => 0);
    // The page sees a later send of b, whose replay range starts after the slow send's id, and leaves.
    await delay(Math.max(0, sentAt + SLACK_MS + 200 - Date.now()));
    await b.plugin.hub.sendByUserId('1', 'bell', 'b1');
    await page.until(() => page.named('bell').some((e) => e.data === 'b1'), 'b1');
    const last = page.named('bell').at(-1)!;
    await page.close();
    proxy.delay(0);
    t.false(
      page.named('bell').some((e) => e.data === 'slow'),
      'the page left before the slow send reached b',
    );
    await eventually(
      async () => (await client.xrange((await client.keys('*:window'))[0] ?? 'none', '-', '+')).some(([, f]) => f.some((v) => v.includes('slow'))),
      'the slow send in the Stream',
      20_000,
    );

    // And a's next send: it would carry a hole to b if a counted the timed-out XADD as one.
    await a.plugin.hub.sendByUserId('2', 'bell', 'after');
    await eventually(
      async () => (await client.xrange((await client.keys('*:window'))[0]!, '-', '+')).some(([, f]) => f.some((v) => v.includes('after'))),
      "a's next send in the Stream",
      20_000,
    );

    const back = await RawStream.open(t, `${b.base}/connect?access-token=1&recover=${encodeURIComponent(last.id!)}`);
    await back.until(() => back.named('bell').some((e) => e.data === 'slow'), 'the slow send replayed');
    t.true(finishOf(back).recovered, 'a timed-out XADD that Redis then applied is no hole');
  },
);
