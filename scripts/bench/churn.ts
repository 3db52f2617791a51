// Channel churn benchmark (issue 21, finding 4). For each setup:
//   single  one node;
//   redis   two nodes of the Redis engine on a redis-server of its own (loopback, free port);
//   lan     two nodes of the HTTP cluster on loopback (static peers);
// a healthy user holds a stream on the last node and the first node sends to it at RATE/s
// (send → receive latency on the machine's monotonic clock, one clock for every process).
// Quiet windows (those sends alone) alternate with floods, so that the machine's other load
// weighs on both alike; the quiet p99 is the median of the quiet windows. The floods: USERS
// users (scripts/bench/churn-client.ts, a process of its own) loop `join.do` / `leave.do` with
// NAMES new channel names per call for FLOOD s, while the healthy user's sends go on:
//   adversarial  calls again at once after a 429 (ignores `Retry-After`);
//   polite       waits a 429's `Retry-After` (as the browser client does);
//   baseline     the same loop to a path that answers 404 at once: what a request flood of that
//                rate costs on this machine, channels aside.
// Per flood: healthy p50 / p99, calls/s (200 / 429 / other), presence news decided, peak
// heapUsed (sampled, no GC). After the adversarial flood: heap after a GC at once and after
// 2 × leaveDelayMs + 3 s (every leave decided and released), against the heap before it.
// With `--before DIR` (a checkout of the code before the fixes, its node_modules reachable),
// each setup runs that code first, then this tree: the before / after comparison in one run
// (the old code has no 429, so its polite flood is its adversarial one and is left out).
// The app is the issue's (scripts/bench/churn-node.ts): `authorizeChannel` allows `room:*`,
// rooms notify their members of presence. Loopback only; bounded (a hard time limit); stops by
// itself.  npx tsx scripts/bench/churn.ts [--quick] [--only single,redis,lan] [--before DIR]
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { redisServerInstalled, startRedisServer, INSTALL_HINT, type RedisProcess } from '../redis-process.js';
import type { Rpc } from './ipc.js';
import { flag, opt } from './cli.js';
import { spawn, stop, stopAfter } from './procs.js';
import { StampedSseClients } from './stamped-sse-clients.js';
import { median } from './stats.js';

const quick = flag('quick');
const SETUPS = (opt('only')?.split(',') ?? ['single', 'redis', 'lan']) as Setup[];
const BEFORE = opt('before');
const RATE = 200;
const QUIET = quick ? 3 : 5;
const FLOOD = quick ? 8 : 12;
const USERS = 40;
const NAMES = 64;
/** The library's default `presence.leaveDelayMs` (the nodes keep the defaults). */
const LEAVE_DELAY_MS = 10_000;
const TIME_LIMIT_MS = (quick ? 8 : 15) * 60_000;

type Setup = 'single' | 'redis' | 'lan';
type Mode = 'adversarial' | 'polite' | 'baseline';
const NAMES_OF: Record<Setup, string> = { single: 'one node', redis: 'Redis engine, 2 nodes', lan: 'LAN cluster (HTTP), 2 nodes' };

interface Version {
  label: 'before' | 'after';
  /** lib/index.ts of the code to run. */
  lib: string;
}

interface Node {
  rpc: Rpc;
  web: number;
}

interface Latency {
  p50: number;
  p99: number;
}

interface FloodResult {
  mode: Mode;
  flood: Latency;
  calls: { perSecond: number; ok: number; limited: number; other: number; failed: number; firstOther?: string };
  news: number;
  peakHeap: number;
}

interface Result {
  setup: Setup;
  version: Version['label'];
  quiet: Latency[];
  floods: FloodResult[];
  heap: { before: number; end: number; after: number };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function startNodes(setup: Setup, version: Version, redis: RedisProcess | undefined): Promise<Node[]> {
  const count = setup === 'single' ? 1 : 2;
  const env = {
    ...process.env,
    CHURN_LIB: version.lib,
    CHURN_ENGINE: setup,
    CHURN_REDIS_URL: redis?.url ?? '',
    CHURN_PREFIX: `churn:${randomBytes(4).toString('hex')}`,
    CHURN_SECRET: randomBytes(32).toString('base64'),
  };
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const { rpc } = await spawn('churn-node.ts', [], ['--expose-gc'], `${setup} ${version.label} node${i + 1}`, env);
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

async function news(nodes: Node[]): Promise<number> {
  return (await Promise.all(nodes.map((n) => n.rpc.call<number>('news')))).reduce((x, y) => x + y, 0);
}

const latencyOf = (healthy: StampedSseClients): Latency => ({ p50: healthy.hist.percentile(50) / 1000, p99: healthy.hist.percentile(99) / 1000 });

/** The healthy user's sends alone for `seconds`. */
async function quiet(nodes: Node[], healthy: StampedSseClients, seconds: number): Promise<Latency> {
  healthy.reset();
  await nodes[0]!.rpc.call('pace', { user: 'healthy', rate: RATE, seconds }, (seconds + 30) * 1000);
  await sleep(200);
  return latencyOf(healthy);
}

/** One flood of `mode` while the healthy user's sends go on. */
async function flood(mode: Mode, nodes: Node[], client: Rpc, healthy: StampedSseClients): Promise<FloodResult> {
  const newsBefore = await news(nodes);
  const flooding = client.call<FloodResult['calls'] & { calls: number; seconds: number }>(
    'run',
    { ports: nodes.map((n) => n.web), users: USERS, names: NAMES, seconds: FLOOD, mode },
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
  const during = await quiet(nodes, healthy, FLOOD - 3);
  const totals = await flooding;
  sampling = false;
  await sampler;
  return {
    mode,
    flood: during,
    calls: { ...totals, perSecond: totals.calls / totals.seconds },
    news: (await news(nodes)) - newsBefore,
    peakHeap: peak,
  };
}

async function measure(setup: Setup, version: Version, redis: RedisProcess | undefined): Promise<Result> {
  const nodes = await startNodes(setup, version, redis);
  const { rpc: client } = await spawn('churn-client.ts', [], [], `${setup} ${version.label} flood`);
  const healthy = new StampedSseClients();
  try {
    const a = nodes[0]!;
    await healthy.open(nodes[nodes.length - 1]!.web, 'healthy');
    // Until one send arrives the receiving node may not be subscribed yet: not what is measured.
    await until(`${setup}: a first send arrives`, 10_000, async () => {
      await a.rpc.call('pace', { user: 'healthy', rate: 20, seconds: 0.1 });
      return healthy.received > 0;
    });
    await quiet(nodes, healthy, 1); // warm-up
    const quiets: Latency[] = [];
    const floods: FloodResult[] = [];
    const heapBefore = await heapSum(nodes);
    quiets.push(await quiet(nodes, healthy, QUIET));
    console.error(`churn: ${NAMES_OF[setup]}, ${version.label}, adversarial flood …`);
    floods.push(await flood('adversarial', nodes, client, healthy));
    const heapEnd = await heapSum(nodes);
    // Every leave decided (leaveDelayMs after the last one) and remembered no longer (another leaveDelayMs).
    await sleep(2 * LEAVE_DELAY_MS + 3000);
    const heapAfter = await heapSum(nodes);
    for (const mode of version.label === 'before' ? (['baseline'] as const) : (['polite', 'baseline'] as const)) {
      quiets.push(await quiet(nodes, healthy, QUIET));
      console.error(`churn: ${NAMES_OF[setup]}, ${version.label}, ${mode} flood …`);
      floods.push(await flood(mode, nodes, client, healthy));
    }
    quiets.push(await quiet(nodes, healthy, QUIET));
    return { setup, version: version.label, quiet: quiets, floods, heap: { before: heapBefore, end: heapEnd, after: heapAfter } };
  } finally {
    healthy.close();
    await stop(client);
    await Promise.all(nodes.map((n) => stop(n.rpc)));
  }
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');

async function main(): Promise<void> {
  stopAfter(TIME_LIMIT_MS, `churn benchmark: time limit of ${TIME_LIMIT_MS / 60_000} min reached; stopping`);
  const loadBefore = loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
  const here: Version = { label: 'after', lib: resolve('lib/index.ts') };
  const versions: Version[] = BEFORE === undefined ? [here] : [{ label: 'before', lib: resolve(join(BEFORE, 'lib/index.ts')) }, here];
  let redis: RedisProcess | undefined;
  const results: Result[] = [];
  try {
    for (const setup of SETUPS) {
      if (setup === 'redis' && !redisServerInstalled()) {
        console.error(`redis-server is not installed (${INSTALL_HINT}): the Redis setup is left out`);
        continue;
      }
      for (const version of versions) {
        if (setup === 'redis') redis = await startRedisServer({ aof: false });
        console.error(`churn: ${NAMES_OF[setup]}, ${version.label} …`);
        results.push(await measure(setup, version, redis));
        await redis?.stop();
        redis = undefined;
      }
    }
  } finally {
    await redis?.stop();
  }
  const cpu = cpus();
  const args = process.argv.slice(2).join(' ');
  console.log(
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`npx tsx scripts/bench/churn.ts${args === '' ? '' : ` ${args}`}\` on ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}, Node ${process.version}; load average at the start ${loadBefore}, at the end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')}.`,
  );
  console.log(
    `${USERS} users × ${NAMES} new channel names per call, ${FLOOD} s per flood; healthy sends at ${RATE}/s; quiet p99 = median of ${results[0]?.quiet.length ?? 0} quiet windows of ${QUIET} s between the floods.\n`,
  );
  console.log(
    '| setup | code | flood | quiet p99 ms | flood p50 / p99 ms | p99 flood ÷ quiet | calls/s (200 / 429 / other) | presence news | peak heap MB |',
  );
  console.log('|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const q = median(r.quiet.map((l) => l.p99));
    for (const f of r.floods) {
      const c = f.calls;
      console.log(
        `| ${NAMES_OF[r.setup]} | ${r.version} | ${f.mode} | ${ms(q)} | ${ms(f.flood.p50)} / ${ms(f.flood.p99)} | ${(f.flood.p99 / q).toFixed(2)}× | ` +
          `${c.perSecond.toFixed(0)} (${c.ok} / ${c.limited} / ${c.other + c.failed}) | ${f.news} | ${mb(f.peakHeap)} |`,
      );
    }
  }
  console.log('\nHeap (heapUsed after a GC, all nodes): before the adversarial flood, at its end, and 2 × leaveDelayMs + 3 s later.\n');
  console.log('| setup | code | before MB | end MB | after MB | after − before MB | quiet p99s ms |');
  console.log('|---|---|---:|---:|---:|---:|---|');
  for (const r of results) {
    console.log(
      `| ${NAMES_OF[r.setup]} | ${r.version} | ${mb(r.heap.before)} | ${mb(r.heap.end)} | ${mb(r.heap.after)} | ${mb(r.heap.after - r.heap.before)} | ${r.quiet.map((l) => ms(l.p99)).join(', ')} |`,
    );
  }
  for (const r of results)
    for (const f of r.floods)
      if (f.calls.firstOther !== undefined)
        console.log(`\n(${NAMES_OF[r.setup]}, ${r.version}, ${f.mode}: first other answer: ${f.calls.firstOther})`);
}

await main();
process.exit(0);
