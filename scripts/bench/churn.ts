// Channel churn benchmark (issue 21, finding 4). For each setup:
//   single  one node;
//   redis   two nodes of the Redis engine on a redis-server of its own (loopback, free port);
//   lan     two nodes of the HTTP cluster on loopback (static peers);
// a healthy user holds a stream on the last node and the first node sends to it at RATE/s
// (send → receive latency on the machine's monotonic clock, one clock for every process):
//   1. quiet: QUIET s of those sends alone: p50 / p99;
//   2. flood: USERS users (scripts/bench/churn-client.ts, a process of its own) loop `join.do`
//      / `leave.do` with NAMES new channel names per call for FLOOD s, while the healthy user's
//      sends go on: p50 / p99, calls/s (200 / 429 / other), peak heapUsed (sampled, no GC);
//   3. after: heap after a GC at once, and again after 2 × leaveDelayMs + 3 s (every leave
//      decided and its memory released), against the heap before the flood (after a GC).
// The app is the (scripts/bench/churn-node.ts): `authorizeChannel` allows `room:*`,
// rooms notify their members of presence. Loopback only; bounded (a hard time limit); stops by
// itself.  npx tsx scripts/bench/churn.ts [--quick] [--only single,redis,lan] [--polite]
//   --polite: the flood honours `Retry-After` (a well-behaved client); default: it ignores it.
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { redisServerInstalled, startRedisServer, INSTALL_HINT, type RedisProcess } from '../redis-process.js';
import type { Rpc } from './ipc.js';
import { spawn, stop } from './procs.js';
import { StampedSseClients } from './stamped-sse-clients.js';

const quick = process.argv.includes('--quick');
const polite = process.argv.includes('--polite');
const onlyArg = process.argv[process.argv.indexOf('--only') + 1];
const SETUPS = (process.argv.includes('--only') && onlyArg !== undefined ? onlyArg.split(',') : ['single', 'redis', 'lan']) as Setup[];
const RATE = 200;
const QUIET = quick ? 4 : 8;
const FLOOD = quick ? 8 : 15;
const USERS = 40;
const NAMES = 64;
/** The library's default `presence.leaveDelayMs` (the nodes keep the defaults). */
const LEAVE_DELAY_MS = 10_000;
const TIME_LIMIT_MS = (quick ? 4 : 7) * 60_000;

type Setup = 'single' | 'redis' | 'lan';
const NAMES_OF: Record<Setup, string> = { single: 'one node', redis: 'Redis engine, 2 nodes', lan: 'LAN cluster (HTTP), 2 nodes' };

interface Node {
  rpc: Rpc;
  web: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function startNodes(setup: Setup, redis: RedisProcess | undefined): Promise<Node[]> {
  const count = setup === 'single' ? 1 : 2;
  const env = {
    ...process.env,
    CHURN_ENGINE: setup,
    CHURN_REDIS_URL: redis?.url ?? '',
    CHURN_PREFIX: `churn:${randomBytes(4).toString('hex')}`,
    CHURN_SECRET: randomBytes(32).toString('base64'),
  };
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const { rpc } = await spawn('churn-node.ts', [], ['--expose-gc'], `${setup} node${i + 1}`, env);
      const { web } = await rpc.call<{ web: number }>('address');
      nodes.push({ rpc, web });
    }
    if (setup === 'lan') {
      const peers = await Promise.all(nodes.map(async (n) => (await n.rpc.call<{ internal: string }>('address')).internal));
      await Promise.all(nodes.map((n) => n.rpc.call('setPeers', { peers })));
    }
    for (const n of nodes) await until(`${setup}: every node sees its peers`, 20_000, async () => (await n.rpc.call<number>('peers')) === count - 1);
  } catch (err) {
    await Promise.all(nodes.map((n) => stop(n.rpc)));
    throw err;
  }
  return nodes;
}

async function heapSum(nodes: Node[]): Promise<number> {
  let sum = 0;
  for (const n of nodes) sum += (await n.rpc.call<{ heapUsed: number }>('heap')).heapUsed;
  return sum;
}

interface Result {
  setup: Setup;
  quiet: { p50: number; p99: number; n: number };
  flood: { p50: number; p99: number; n: number };
  calls: { perSecond: number; ok: number; limited: number; other: number; failed: number; firstOther?: string };
  news: number;
  heap: { before: number; peak: number; end: number; after: number };
}

async function measure(setup: Setup, redis: RedisProcess | undefined): Promise<Result> {
  const nodes = await startNodes(setup, redis);
  const { rpc: flood } = await spawn('churn-client.ts', [], [], `${setup} flood`);
  const healthy = new StampedSseClients();
  try {
    const a = nodes[0]!;
    await healthy.open(nodes[nodes.length - 1]!.web, 'healthy');
    // Until one send arrives the receiving node may not be subscribed yet: not what is measured.
    await until(`${setup}: a first send arrives`, 10_000, async () => {
      await a.rpc.call('pace', { user: 'healthy', rate: 20, seconds: 0.1 });
      return healthy.received > 0;
    });
    await a.rpc.call('pace', { user: 'healthy', rate: RATE, seconds: 1 }); // warm-up
    const heapBefore = await heapSum(nodes);

    healthy.reset();
    await a.rpc.call('pace', { user: 'healthy', rate: RATE, seconds: QUIET }, (QUIET + 30) * 1000);
    await sleep(200);
    const quiet = { p50: healthy.hist.percentile(50) / 1000, p99: healthy.hist.percentile(99) / 1000, n: healthy.received };

    const newsBefore = (await Promise.all(nodes.map((n) => n.rpc.call<number>('news')))).reduce((x, y) => x + y, 0);
    const flooding = flood.call<Result['calls'] & { calls: number; seconds: number }>(
      'run',
      { ports: nodes.map((n) => n.web), users: USERS, names: NAMES, seconds: FLOOD, honorRetryAfter: polite },
      (FLOOD + 120) * 1000,
    );
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        let sum = 0;
        for (const n of nodes) sum += await n.rpc.call<number>('heapNow', {}, 30_000);
        peak = Math.max(peak, sum);
        await sleep(500);
      }
    })();
    // The healthy user's sends start once the flood runs (its streams open first) and end before it does.
    await sleep(1500);
    healthy.reset();
    await a.rpc.call('pace', { user: 'healthy', rate: RATE, seconds: FLOOD - 3 }, (FLOOD + 60) * 1000);
    await sleep(200);
    const during = { p50: healthy.hist.percentile(50) / 1000, p99: healthy.hist.percentile(99) / 1000, n: healthy.received };
    const totals = await flooding;
    sampling = false;
    await sampler;
    const heapEnd = await heapSum(nodes);
    // Every leave decided (leaveDelayMs after the last one) and remembered no longer (another leaveDelayMs).
    await sleep(2 * LEAVE_DELAY_MS + 3000);
    const heapAfter = await heapSum(nodes);
    const newsAfter = (await Promise.all(nodes.map((n) => n.rpc.call<number>('news')))).reduce((x, y) => x + y, 0);
    return {
      setup,
      quiet,
      flood: during,
      calls: { ...totals, perSecond: totals.calls / totals.seconds },
      news: newsAfter - newsBefore,
      heap: { before: heapBefore, peak: Math.max(peak, heapEnd), end: heapEnd, after: heapAfter },
    };
  } finally {
    healthy.close();
    await stop(flood);
    await Promise.all(nodes.map((n) => stop(n.rpc)));
  }
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');

async function main(): Promise<void> {
  const limit = setTimeout(() => {
    console.error(`churn benchmark: time limit of ${TIME_LIMIT_MS / 60_000} min reached; stopping`);
    process.exit(1);
  }, TIME_LIMIT_MS);
  limit.unref();
  let redis: RedisProcess | undefined;
  const results: Result[] = [];
  try {
    for (const setup of SETUPS) {
      if (setup === 'redis') {
        if (!redisServerInstalled()) {
          console.error(`redis-server is not installed (${INSTALL_HINT}): the Redis setup is left out`);
          continue;
        }
        redis = await startRedisServer({ aof: false });
      }
      console.error(`churn: ${NAMES_OF[setup]} …`);
      results.push(await measure(setup, redis));
      await redis?.stop();
      redis = undefined;
    }
  } finally {
    await redis?.stop();
  }
  const cpu = cpus();
  console.log(
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`npx tsx scripts/bench/churn.ts${quick ? ' --quick' : ''}${polite ? ' --polite' : ''}\` on ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}, Node ${process.version}.`,
  );
  console.log(
    `${USERS} users × ${NAMES} new channel names per call, ${FLOOD} s, the flood ${polite ? 'honouring' : 'ignoring'} \`Retry-After\`; healthy sends at ${RATE}/s, quiet ${QUIET} s.\n`,
  );
  console.log(
    '| setup | quiet p50 / p99 ms | flood p50 / p99 ms | p99 flood ÷ quiet | calls/s (200 / 429 / other) | presence news | heap MB before / peak / end / after | after − before MB |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const c = r.calls;
    console.log(
      `| ${NAMES_OF[r.setup]} | ${ms(r.quiet.p50)} / ${ms(r.quiet.p99)} | ${ms(r.flood.p50)} / ${ms(r.flood.p99)} | ${(r.flood.p99 / r.quiet.p99).toFixed(2)}× | ` +
        `${c.perSecond.toFixed(0)} (${c.ok} / ${c.limited} / ${c.other + c.failed}) | ${r.news} | ` +
        `${mb(r.heap.before)} / ${mb(r.heap.peak)} / ${mb(r.heap.end)} / ${mb(r.heap.after)} | ${mb(r.heap.after - r.heap.before)} |`,
    );
    if (c.firstOther !== undefined) console.log(`\n(${NAMES_OF[r.setup]}: first other answer: ${c.firstOther})`);
  }
}

await main();
process.exit(0);
