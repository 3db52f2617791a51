// Side-by-side benchmark: this library vs a raw node:http SSE server (the practical limit),
// better-sse and socket.io (websocket transport). Fan-out (burst and paced), memory per idle
// connection, targeted sends and connect rate. Every server under test and every load client
// runs in its own process; all traffic is on 127.0.0.1; every phase is bounded in count and
// time; child processes are killed on exit.
//
//   npm run bench         full run (1k / 5k / 10k connections), writes BENCHMARKS.md + docs/bench-ratios.svg
//   npm run bench:quick   about a minute (1k / 5k), prints the tables only
//
// Options: --quick, --write / --no-write, --only raw,lib (also: koa, bare Koa for reference)  --sizes 1000,10000  --clients 2
//          --repeat 3  --prof lib (writes a --cpu-prof profile of that server to .tmp/bench-prof/; sampling
//          interval BENCH_PROF_INTERVAL µs, default 1000)
//          --snapshot (writes a heap snapshot of each server with idle connections to .tmp/bench-prof/)
//          --phases burst,paced,targeted (default: all; connect and memory always run)
//          --report-from .tmp/bench-last.json [--write] (re-renders the report of a saved run)
//          --window on|off (the recovery window of ordinary sends in our server; default on)
//          --against <commit>[,<commit>] (this tree's lib beside those commits' builds, no other server:
//          each size in --rounds rounds (default 2), the order rotated and reversed every round (ABBA),
//          and a table of each measure's median as a ratio to the first commit; checkout.ts builds)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { abbaOrder } from './abba.js';
import { checkout, removeCheckout } from './checkout.js';
import type { Rpc } from './ipc.js';
import { flag, opt } from './cli.js';
import { root, spawn, stop, stopAfter } from './procs.js';
import { printReport, writeReport, type Pair, type Phase, type Run, type ServerKind } from './report.js';
import { Histogram, median } from './stats.js';

const QUICK = flag('quick');
const WINDOW = opt('window') ?? 'on';
if (WINDOW !== 'on' && WINDOW !== 'off') throw new Error('--window must be on or off');
// Read by servers/lib.ts in its own process (children inherit the environment).
if (WINDOW === 'off') process.env.BENCH_RECOVERY = 'off';
const ALL: ServerKind[] = ['raw', 'raw-socket', 'lib', 'better-sse', 'socket.io'];
/** Reference servers that run only when named in --only. */
const EXTRA: ServerKind[] = ['koa'];
const against = opt('against')?.split(',');
const servers = (opt('only')?.split(',') as ServerKind[] | undefined) ?? (against === undefined ? ALL : []);
for (const s of servers) if (![...ALL, ...EXTRA].includes(s)) throw new Error(`unknown server ${s}; one of ${[...ALL, ...EXTRA].join(', ')}`);
const sizes = opt('sizes')?.split(',').map(Number) ?? (QUICK ? [1000, 5000] : [1000, 5000, 10000]);
if (sizes.some((n) => !(n > 0 && n <= 10_000))) throw new Error('sizes must be 1..10000 (beyond ~15k one loopback source address runs out)');
const maxN = Math.max(...sizes);
const phases = new Set(opt('phases')?.split(',') ?? ['burst', 'paced', 'targeted']);

export const config = {
  quick: QUICK,
  sizes,
  /** Memory per idle connection is measured at these sizes. */
  memSizes: QUICK ? sizes : sizes.filter((n) => n === 1000 || n === 10000 || n === maxN),
  clients: Number(opt('clients') ?? 2),
  /** Handshakes in flight per client process while connecting. */
  connectConcurrency: 128,
  /** Streams opened and closed before the empty-server memory baseline. */
  warmup: 50,
  /** Burst: about this many deliveries per repetition, in batches of `batch` broadcasts per event-loop turn. */
  burstDeliveries: QUICK ? 250_000 : 1_000_000,
  batch: 10,
  repeat: Number(opt('repeat') ?? (QUICK ? 1 : 3)),
  /** Paced: this many deliveries per second (events/s = rate / N), for this long. */
  pacedDeliveriesPerSec: 50_000,
  pacedSeconds: QUICK ? 1.2 : 4,
  /** Targeted: sends to random users among the largest N. */
  targetedSends: QUICK ? 10_000 : 50_000,
  targetedBatch: 100,
  /** Paced p99 of raw and lib at once, alternating, at the largest size: rounds (one run of each per round). */
  pairRounds: QUICK ? 2 : 5,
  /** A phase that makes no progress for this long is reported incomplete. */
  stallMs: 5_000,
};

const SERVER_FILES: Record<ServerKind, string> = {
  raw: 'servers/raw.ts',
  'raw-socket': 'servers/raw-socket.ts',
  koa: 'servers/koa.ts',
  lib: 'servers/lib.ts',
  'better-sse': 'servers/better-sse.ts',
  'socket.io': 'servers/socketio.ts',
};

// ---- child processes (scripts/bench/procs.ts) --------------------------------------

stopAfter((against === undefined ? (QUICK ? 5 : 25) : 40) * 60_000, `bench: overall time limit reached, stopping`);

// ---- one measured phase ----------------------------------------------------------------

interface Mark {
  t: number;
  cpu: number;
}

async function measure(server: Rpc, clients: Rpc[], cmd: string, args: Record<string, unknown>, expected: number): Promise<Phase> {
  await Promise.all(clients.map((c) => c.call('expect')));
  const clientCpu0 = await Promise.all(clients.map((c) => c.call<number>('cpu')));
  const { start } = await server.call<{ start: Mark; issued: Mark }>(cmd, args, 120_000);
  let total = 0;
  let lastProgress = Date.now();
  const capAt = Date.now() + 120_000;
  for (;;) {
    const statuses = await Promise.all(clients.map((c) => c.call<{ received: number }>('status')));
    const now = statuses.reduce((s, x) => s + x.received, 0);
    if (now !== total) lastProgress = Date.now();
    total = now;
    if (total >= expected || Date.now() - lastProgress > config.stallMs || Date.now() > capAt) break;
    await sleep(25);
  }
  const end = await server.call<Mark>('cpu');
  const results = await Promise.all(
    clients.map((c) => c.call<{ received: number; lastAt: number; hist: Array<[number, number]>; cpu: number }>('result')),
  );
  const hist = new Histogram();
  let lastAt = 0;
  let clientUtil = 0;
  for (const r of results) {
    hist.addSparse(r.hist);
    lastAt = Math.max(lastAt, r.lastAt);
  }
  const windowUs = Math.max(1, lastAt - start.t);
  for (const [i, r] of results.entries()) clientUtil = Math.max(clientUtil, (r.cpu - clientCpu0[i]!) / windowUs);
  const delivered = hist.total;
  return {
    expected,
    delivered,
    perSec: (delivered / windowUs) * 1e6,
    cpuPerDeliveryUs: (end.cpu - start.cpu) / Math.max(1, delivered),
    serverUtil: (end.cpu - start.cpu) / windowUs,
    clientUtil,
    p50Ms: hist.percentile(50) / 1000,
    p99Ms: hist.percentile(99) / 1000,
  };
}

// ---- one server at one size ------------------------------------------------------------

interface SetUp {
  server: Rpc;
  clients: Rpc[];
  /** Every child of this set-up, the server first. */
  rpcs: Rpc[];
  base: NodeJS.MemoryUsage;
  live: number;
  connect: Run['connect'];
}

/**
 * Starts a server and its clients, warms it up, takes the empty-server baseline, connects `n`
 * streams. `libDir`: the lib/ folder of another commit's build (`--against`) for a `lib` server.
 */
async function setUp(kind: ServerKind, n: number, libDir?: string): Promise<SetUp> {
  const profDir = opt('prof') === kind ? join(root, '.tmp', 'bench-prof') : undefined;
  if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
  const serverArgv = [
    '--expose-gc',
    ...(profDir ? ['--cpu-prof', '--cpu-prof-interval', process.env.BENCH_PROF_INTERVAL ?? '1000', `--cpu-prof-dir=${profDir}`] : []),
  ];
  const env = libDir === undefined ? process.env : { ...process.env, BENCH_LIB_DIR: libDir };
  const { rpc: server, ready: port } = await spawn(SERVER_FILES[kind], [], serverArgv, `${kind} server`, env);
  const rpcs: Rpc[] = [server];
  try {
    const protocol = kind === 'socket.io' ? 'socketio' : 'sse';
    const clients = (
      await Promise.all(Array.from({ length: config.clients }, (_, i) => spawn('client.ts', [protocol, String(port)], [], `client ${i}`)))
    ).map((c) => c.rpc);
    rpcs.push(...clients);

    // Warm-up: a few streams opened and closed, so that code compiled on the first requests
    // is in the empty-server baseline and not counted as memory per connection.
    await clients[0]!.call('connect', { from: n, to: n + config.warmup, concurrency: 16 }, 60_000);
    await clients[0]!.call('closeAll');
    for (let i = 0; i < 250 && (await server.call<number>('count')) > 0; i++) await sleep(20);
    const base = await server.call<NodeJS.MemoryUsage>('mem');

    // Connect rate: every client process opens its share, `connectConcurrency` at a time.
    const cpu0 = await server.call<Mark>('cpu');
    const share = Math.ceil(n / clients.length);
    const opened = await Promise.all(
      clients.map((c, i) =>
        c.call<{ start: number; end: number; opened: number; failed: number; firstError?: string }>(
          'connect',
          { from: i * share, to: Math.min(n, (i + 1) * share), concurrency: config.connectConcurrency },
          120_000,
        ),
      ),
    );
    const failed = opened.reduce((s, o) => s + o.failed, 0);
    if (failed > 0) console.error(`  ${kind}: ${failed} connections failed: ${opened.find((o) => o.firstError)?.firstError}`);
    const connectUs = Math.max(...opened.map((o) => o.end)) - Math.min(...opened.map((o) => o.start));
    const live = n - failed;
    // The server registers a stream a moment after the client saw the head (better-sse: a tick later).
    for (let i = 0; i < 100 && (await server.call<number>('count')) < live; i++) await sleep(20);
    const cpu1 = await server.call<Mark>('cpu');
    return {
      server,
      clients,
      rpcs,
      base,
      live,
      connect: { perSec: (live / connectUs) * 1e6, failed, cpuUs: (cpu1.cpu - cpu0.cpu) / Math.max(1, live) },
    };
  } catch (err) {
    await tearDown(rpcs);
    throw err;
  }
}

/**
 * The server goes first: its side of each socket closes first, so the clients' ephemeral
 * ports are not left in TIME_WAIT.
 */
async function tearDown(rpcs: Rpc[]): Promise<void> {
  for (const rpc of rpcs) await stop(rpc);
}

function pacedArgs(n: number): { k: number; intervalMs: number; rate: number } {
  const rate = config.pacedDeliveriesPerSec / n;
  return { k: Math.max(10, Math.round(rate * config.pacedSeconds)), intervalMs: 1000 / rate, rate };
}

async function runOne(kind: ServerKind, n: number, libDir?: string): Promise<Run> {
  const { server, clients, rpcs, base, live, connect } = await setUp(kind, n, libDir);
  try {
    const run: Run = { server: kind, n, connect, burst: [] };
    if (config.memSizes.includes(n)) {
      const mem = await server.call<NodeJS.MemoryUsage>('mem');
      run.mem = {
        heapPerConn: (mem.heapUsed - base.heapUsed) / live,
        rssPerConn: (mem.rss - base.rss) / live,
        externalPerConn: (mem.external - base.external) / live,
      };
      if (flag('snapshot')) {
        mkdirSync(join(root, '.tmp', 'bench-prof'), { recursive: true });
        await server.call('snapshot', { file: join(root, '.tmp', 'bench-prof', `${kind}-${n}.heapsnapshot`) });
      }
    }
    const k = Math.max(config.batch, Math.round(config.burstDeliveries / n / config.batch) * config.batch);
    for (let r = 0; r < config.repeat && phases.has('burst'); r++) {
      run.burst.push(await measure(server, clients, 'burst', { k, batch: config.batch }, k * live));
    }
    const paced = pacedArgs(n);
    run.pacedAll = [];
    for (let r = 0; r < config.repeat && phases.has('paced'); r++) {
      run.pacedAll.push(await measure(server, clients, 'paced', { k: paced.k, intervalMs: paced.intervalMs }, paced.k * live));
    }
    // The repetition with the median p99 stands for the run.
    if (run.pacedAll.length > 0) run.paced = [...run.pacedAll].sort((a, b) => a.p99Ms - b.p99Ms)[(run.pacedAll.length - 1) >> 1];
    run.pacedRate = paced.rate;
    if (n === maxN && phases.has('targeted')) {
      run.targeted = await measure(
        server,
        clients,
        'targeted',
        { m: config.targetedSends, users: n, batch: config.targetedBatch },
        config.targetedSends,
      );
    }
    return run;
  } finally {
    await tearDown(rpcs);
  }
}

/**
 * Paced p99, raw and koa-sse-server at once: both up with `n` streams each (own clients), the
 * paced runs alternating raw, lib, lib, raw, ... so that whatever else the machine does at
 * the time (other tests, here) hits both alike. Tail latency measured one server after the
 * other is at the mercy of such interference.
 */
async function pacedPair(n: number): Promise<Pair> {
  const kinds: ServerKind[] = ['raw', 'lib'];
  const setUps: SetUp[] = [];
  try {
    for (const kind of kinds) setUps.push(await setUp(kind, n));
    const paced = pacedArgs(n);
    const out: Pair = { n, rounds: config.pairRounds, raw: [], lib: [] };
    for (let r = 0; r < config.pairRounds; r++) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const { server, clients, live } = setUps[i]!;
        const phase = await measure(server, clients, 'paced', { k: paced.k, intervalMs: paced.intervalMs }, paced.k * live);
        out[kinds[i] as 'raw' | 'lib'].push(phase);
      }
    }
    return out;
  } finally {
    for (const s of setUps) await tearDown(s.rpcs);
  }
}

// ---- main ------------------------------------------------------------------------------

const reportFrom = opt('report-from');
if (reportFrom !== undefined) {
  // Re-renders the tables, BENCHMARKS.md and the chart from a saved run.
  const saved = JSON.parse(readFileSync(reportFrom, 'utf8')) as {
    runs: Run[];
    pair?: Pair;
    measuredAt?: string;
    config: typeof config;
    seconds: number;
  };
  const results = { runs: saved.runs, pair: saved.pair, measuredAt: saved.measuredAt };
  printReport(results, saved.config, saved.seconds, root);
  if (flag('write')) writeReport(results, saved.config, saved.seconds, root);
  process.exit(0);
}

if (against !== undefined) {
  await compareBuilds(against);
  process.exit(0);
}

/**
 * `--against`: this tree's lib beside other commits' builds, all of one size in a round, the
 * order rotated and reversed every round so that the machine's drift hits each alike; prints
 * each measure's median and its ratio to the first commit's.
 */
async function compareBuilds(commits: string[]): Promise<void> {
  const rounds = Number(opt('rounds') ?? 2);
  if (!(rounds > 0 && rounds <= 10)) throw new Error('--rounds must be 1..10');
  const builds = [...commits.map((c) => ({ label: `lib@${c}`, dir: join(checkout(c), 'lib') })), { label: 'lib (this tree)', dir: undefined }];
  console.log(`bench ${QUICK ? 'quick' : 'full'}: ${builds.map((b) => b.label).join(' vs ')}; connections ${sizes.join(', ')}; ${rounds} rounds`);
  type Measure = [name: string, of: (run: Run) => number | undefined];
  const measures: Measure[] = [
    ['burst deliveries/s', (r) => r.burst[0]?.perSec],
    ['burst server CPU µs / delivery', (r) => r.burst[0]?.cpuPerDeliveryUs],
    ['paced p99 ms', (r) => r.paced?.p99Ms],
    ['paced server CPU µs / delivery', (r) => r.paced?.cpuPerDeliveryUs],
    ['targeted sends/s', (r) => r.targeted?.perSec],
    ['heap KB / idle connection', (r) => (r.mem === undefined ? undefined : r.mem.heapPerConn / 1024)],
    ['connects/s', (r) => r.connect.perSec],
    ['server CPU µs / stream opened', (r) => r.connect.cpuUs],
  ];
  try {
    for (const n of sizes) {
      const runs = builds.map((): Run[] => []);
      for (let r = 0; r < rounds; r++) {
        for (const i of abbaOrder(builds.length, r + 1)) {
          const run = await runOne('lib', n, builds[i]!.dir);
          runs[i]!.push(run);
          const b = run.burst[0];
          console.log(
            `  round ${r + 1} ${builds[i]!.label} N=${n}: burst ${Math.round(b?.perSec ?? 0).toLocaleString('en')}/s, ` +
              `paced p99 ${run.paced?.p99Ms.toFixed(1)} ms, heap ${((run.mem?.heapPerConn ?? 0) / 1024).toFixed(2)} KB/conn, ` +
              `connect ${Math.round(run.connect.perSec).toLocaleString('en')}/s (${run.connect.cpuUs?.toFixed(0)} µs CPU each)`,
          );
        }
      }
      console.log(`\n| N=${n.toLocaleString('en')}, median of ${rounds} | ${builds.map((b) => b.label).join(' | ')} |`);
      console.log(`|---|${builds.map(() => '---:').join('|')}|`);
      for (const [name, of] of measures) {
        const med = runs.map((list) => {
          const values = list.map(of).filter((v): v is number => v !== undefined);
          return values.length === 0 ? undefined : median(values);
        });
        if (med[0] === undefined) continue;
        const cells = med.map((m, i) =>
          m === undefined ? '—' : `${m.toFixed(m >= 100 ? 0 : 2)}${i === 0 ? '' : ` (${(m / med[0]!).toFixed(2)}×)`}`,
        );
        console.log(`| ${name} | ${cells.join(' | ')} |`);
      }
      console.log('');
    }
  } finally {
    for (const b of builds) if (b.dir !== undefined) removeCheckout(join(b.dir, '..'));
  }
}

const started = Date.now();
const runs: Run[] = [];
console.log(`bench ${QUICK ? 'quick' : 'full'}: servers ${servers.join(', ')}; connections ${sizes.join(', ')}; ${config.clients} client processes`);
for (const n of sizes) {
  for (const kind of servers) {
    const t0 = Date.now();
    const run = await runOne(kind, n);
    runs.push(run);
    const b = run.burst[0];
    console.log(
      `  ${kind.padEnd(10)} N=${String(n).padStart(5)}: ` +
        (b
          ? `burst ${Math.round(b.perSec).toLocaleString('en')} deliveries/s ` +
            `(${b.cpuPerDeliveryUs.toFixed(2)} µs CPU each, server ${(b.serverUtil * 100).toFixed(0)}% / client ${(b.clientUtil * 100).toFixed(0)}%), `
          : '') +
        (run.paced ? `paced p99 ${run.paced.p99Ms.toFixed(1)} ms` : '') +
        (run.mem ? `, heap ${(run.mem.heapPerConn / 1024).toFixed(2)} KB/conn` : '') +
        `, connect ${Math.round(run.connect.perSec).toLocaleString('en')}/s [${((Date.now() - t0) / 1000).toFixed(1)} s]`,
    );
  }
}
let pair: Pair | undefined;
if (servers.includes('raw') && servers.includes('lib') && phases.has('paced') && config.pairRounds > 0) {
  const t0 = Date.now();
  pair = await pacedPair(maxN);
  const p99 = (list: Phase[]): string => list.map((x) => x.p99Ms.toFixed(1)).join(', ');
  console.log(`  paced pair N=${maxN}: p99 raw ${p99(pair.raw)} ms; lib ${p99(pair.lib)} ms [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
}
const seconds = (Date.now() - started) / 1000;
const results = { runs, pair, measuredAt: new Date().toISOString() };
mkdirSync(join(root, '.tmp'), { recursive: true });
writeFileSync(join(root, '.tmp', 'bench-last.json'), JSON.stringify({ ...results, config, seconds }));
printReport(results, config, seconds, root);
if (flag('write') || (!QUICK && !flag('no-write'))) writeReport(results, config, seconds, root);
