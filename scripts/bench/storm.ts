// Reconnect-storm benchmark: every stream of a server comes back at once after a graceful
// restart (a deploy) or after a cluster node is killed, resumes, and drains its durable queue.
//   restart: N streams on one server with 5 durable messages pending per user; the server
//     process stops listening, the new one (already started) takes the same port, and the old
//     one closes its streams gracefully. koa-sse-server:
//     `plugin.close()` (connect-close with a random `retry:` over `reconnectTimeMs`), one run
//     per spread; raw node:http: sockets closed, clients back at once; better-sse: sockets
//     closed, clients wait its `retry: 2000`; socket.io: `io.close()`, socket.io-client's
//     default reconnection.
//   node loss: 3 koa-sse-server nodes, N streams spread over them, 5 durable messages pending
//     per user sent through all three nodes in turn; one node gets SIGKILL; its users reconnect
//     to the two others (round-robin). Three times: on the LAN engine with one copy (`cluster`:
//     static peers, a SQLite file per node, `qos.replication: { copies: 1 }`: what was sent
//     through the dead node stays in its file), the same with two (`cluster-copies`, the
//     default: each message also in a survivor's file, which serves it), and on the Redis engine
//     (`cluster-redis`: `cluster: { redis }` + `qos: { redis }`, one redis-server of its own on
//     loopback, AOF everysec: one queue shared by every node, so the survivors replay all of it).
// Measured side by side: time until 99 % / 100 % of the streams are back, until every durable
// message is delivered, server CPU during the storm, and p99 latency of live sends (200/s) to
// random users (only those already back receive them). Loopback only; every phase has a time
// limit; the whole run stops by itself.
//
//   npm run bench:storm            15,000 streams; writes BENCHMARKS.md + docs/bench-storm.svg
//   npm run bench:storm -- --quick 2,000 streams, prints only
// Options: --n 5000, --only lib,raw,better-sse,socket.io,cluster,cluster-copies,cluster-redis, --spreads 1000,5000,15000,
//          --write / --no-write
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, INSTALL_HINT, redisCpuSeconds, redisServerInstalled, startRedisServer, type RedisProcess } from '../redis-process.js';
import type { Rpc } from './ipc.js';
import { flag, opt } from './cli.js';
import { root, spawn, stop, stopAfter } from './procs.js';
import { environment } from './report.js';
import { Histogram, nowUs } from './stats.js';
import { stormChart, stormTables, type StormRun } from './storm-report.js';

const QUICK = flag('quick');
const N = Number(opt('n') ?? (QUICK ? 2000 : 15_000));
if (!(N >= 30 && N <= 18_000)) throw new Error('--n must be 30..18000 (one server process holds at most ~19,900 sockets)');
const ONLY = new Set(opt('only')?.split(',') ?? ['lib', 'raw', 'better-sse', 'socket.io', 'cluster', 'cluster-copies', 'cluster-redis']);
if (ONLY.has('cluster-redis') && !redisServerInstalled()) {
  // Before anything runs: a full run should not end without its Redis row after 10 minutes.
  console.error(`storm: --only cluster-redis needs redis-server. On Debian or Ubuntu:\n  ${INSTALL_HINT}`);
  process.exit(1);
}
const SPREADS = (opt('spreads') ?? '1000,5000,15000').split(',').map(Number);
const WRITE = flag('write') || (!QUICK && !flag('no-write'));
const PER_USER = 5;
const LIVE_RATE = 200;
/** Client processes: a few thousand streams each, each from its own loopback source addresses. */
const CLIENTS = Math.max(2, Math.ceil(N / 6000));
/** A storm ends this long after the slowest planned return (the spread), at the latest. */
const STORM_LIMIT_MS = QUICK ? 25_000 : 45_000;

const started = Date.now();
stopAfter((QUICK ? 6 : 15) * 60_000, 'storm: overall time limit reached, stopping');

/** Source addresses per client process. */
const SOURCES_PER_CLIENT = 4;
let scenario = 0;

/**
 * Loopback source addresses of client `i` in this scenario: a fresh block per scenario.
 * A client binds its source address before connecting (`localAddress`), and Linux then picks
 * a free port by a linear scan of that address's ports: the previous scenario's closed
 * streams sit there in TIME_WAIT for 60 s, and with them the scan made the load clients
 * themselves slow (the next scenario opened its streams in twice the time and its live sends
 * arrived seconds late, while the server was idle).
 */
function sourcesOf(i: number): string[] {
  return Array.from({ length: SOURCES_PER_CLIENT }, (_, j) => `127.${10 + scenario}.${i}.${j + 1}`);
}

async function startClients(protocol: 'sse' | 'socketio', ports: number[]): Promise<Rpc[]> {
  scenario++;
  const rpcs = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => spawn('storm-client.ts', [protocol], [], `client ${i}`)));
  const share = Math.ceil(N / CLIENTS);
  const t0 = performance.now();
  const opened = await Promise.all(
    rpcs.map(({ rpc }, i) =>
      rpc.call<{ opened: number; failed: number; firstError?: string }>(
        'connect',
        { from: i * share, to: Math.min(N, (i + 1) * share), ports, sources: sourcesOf(i), concurrency: 128 },
        180_000,
      ),
    ),
  );
  const failed = opened.reduce((s, o) => s + o.failed, 0);
  if (failed > 0) throw new Error(`${failed} of ${N} streams did not open: ${opened.find((o) => o.firstError)?.firstError}`);
  console.error(`  ${N} streams open in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return rpcs.map((r) => r.rpc);
}

interface Status {
  back: number;
  durable: number;
  ticks: number;
}
async function status(clients: Rpc[]): Promise<Status> {
  const all = await Promise.all(clients.map((c) => c.call<Status>('status')));
  return all.reduce((a, s) => ({ back: a.back + s.back, durable: a.durable + s.durable, ticks: a.ticks + s.ticks }));
}

async function waitDurable(clients: Rpc[], expected: number): Promise<void> {
  const until = Date.now() + 60_000;
  while ((await status(clients)).durable < expected) {
    if (Date.now() > until) throw new Error(`durable messages not delivered before the storm`);
    await sleep(100);
  }
}

interface CpuMark {
  t: number;
  /** µs of CPU: the servers', and the redis-server's when there is one. */
  cpu: number;
  redis?: number;
}

/**
 * Watches a storm from `t0` (µs) until `expectedBack` streams and `expectedDurable` messages
 * arrived (plus one second of live sends), or `limitMs`; samples server CPU (and `redis`'s)
 * every 250 ms.
 */
async function watch(
  clients: Rpc[],
  servers: Rpc[],
  t0: number,
  expectedBack: number,
  expectedDurable: number,
  limitMs: number,
  redis?: RedisProcess,
): Promise<{ cpuSamples: CpuMark[]; complete: boolean }> {
  const cpu = async (): Promise<CpuMark> => {
    const marks = await Promise.all(servers.map((s) => s.call<CpuMark>('cpu')));
    const mark: CpuMark = { t: marks[0]!.t, cpu: marks.reduce((a, m) => a + m.cpu, 0) };
    if (redis !== undefined) mark.redis = redisCpuSeconds(redis) * 1e6;
    return mark;
  };
  const cpuSamples = [await cpu()];
  let doneAt = 0;
  for (;;) {
    await sleep(250);
    cpuSamples.push(await cpu());
    const s = await status(clients);
    if (!doneAt && s.back >= expectedBack && s.durable >= expectedDurable) doneAt = Date.now();
    if (doneAt && Date.now() - doneAt >= 1000) return { cpuSamples, complete: true };
    if ((nowUs() - t0) / 1000 > limitMs) return { cpuSamples, complete: false };
  }
}

interface ClientResult {
  backTimes: number[];
  durable: number;
  lastDurableAt: number;
  duplicates: number;
  marked: number;
  ticks: number;
  hist: Array<[number, number]>;
  attempts: number;
  failures: number;
  firstError?: string;
}

async function collect(
  clients: Rpc[],
  t0: number,
  label: string,
  expectedBack: number,
  durableExpected: number | undefined,
  liveSent: number,
  cpuSamples: CpuMark[],
  extra: Pick<StormRun, 'kind' | 'spreadMs' | 'complete'> & Partial<StormRun>,
): Promise<StormRun> {
  const results = await Promise.all(clients.map((c) => c.call<ClientResult>('result')));
  const back = results.flatMap((r) => r.backTimes.map((t) => (t - t0) / 1000)).sort((a, b) => a - b);
  const hist = new Histogram();
  for (const r of results) hist.addSparse(r.hist);
  const durable = results.reduce((s, r) => s + r.durable, 0);
  const lastDurable = Math.max(...results.map((r) => r.lastDurableAt));
  const lastDurableMs = durable > 0 ? (lastDurable - t0) / 1000 : undefined;
  const at = (p: number): number | undefined => {
    const need = Math.ceil((p / 100) * expectedBack);
    return back.length >= need ? back[need - 1] : undefined;
  };
  // CPU: the busiest second, and the average from the first sample until 100 % were back.
  const end = at(100) === undefined ? cpuSamples.at(-1)!.t : t0 + at(100)! * 1000;
  const first = cpuSamples[0]!;
  const last = [...cpuSamples].reverse().find((s) => s.t <= end + 250_000) ?? cpuSamples.at(-1)!;
  // The busiest window of at least one second between two samples.
  const peakOf = (cpu: (m: CpuMark) => number): number => {
    let peak = 0;
    for (let j = 0, i = 0; j < cpuSamples.length; j++) {
      while (i < cpuSamples.length && cpuSamples[i]!.t - cpuSamples[j]!.t < 1_000_000) i++;
      if (i === cpuSamples.length) break;
      peak = Math.max(peak, (cpu(cpuSamples[i]!) - cpu(cpuSamples[j]!)) / (cpuSamples[i]!.t - cpuSamples[j]!.t));
    }
    return peak;
  };
  const redisCpu =
    first.redis === undefined || last.redis === undefined
      ? {}
      : {
          redisCpuMs: (last.redis - first.redis) / 1000,
          redisCpuAvg: last.t > first.t ? (last.redis - first.redis) / (last.t - first.t) : NaN,
          redisCpuPeak: peakOf((m) => m.redis ?? NaN),
        };
  const run: StormRun = {
    label,
    streams: expectedBack,
    back: back.length,
    p99BackMs: at(99),
    allBackMs: at(100),
    durableExpected,
    durable,
    durableDoneMs: durableExpected !== undefined && durable >= durableExpected ? lastDurableMs : undefined,
    lastDurableMs,
    duplicates: results.reduce((s, r) => s + r.duplicates, 0),
    cpuMs: (last.cpu - first.cpu) / 1000,
    cpuAvg: last.t > first.t ? (last.cpu - first.cpu) / (last.t - first.t) : NaN,
    cpuPeak: peakOf((m) => m.cpu),
    ...redisCpu,
    liveSent,
    liveReceived: hist.total,
    liveP50Ms: hist.percentile(50) / 1000,
    liveP99Ms: hist.percentile(99) / 1000,
    attempts: results.reduce((s, r) => s + r.attempts, 0),
    failures: results.reduce((s, r) => s + r.failures, 0),
    curve: back,
    ...extra,
  };
  if (run.viaDead !== undefined) run.viaDeadDelivered = results.reduce((s, r) => s + r.marked, 0);
  const err = results.find((r) => r.firstError)?.firstError;
  const dead = run.viaDead === undefined ? '' : ` (sent through the killed node: ${run.viaDeadDelivered}/${run.viaDead})`;
  console.error(
    `  ${label}: ${run.back}/${expectedBack} back, 99 % ${run.p99BackMs?.toFixed(0)} ms, 100 % ${run.allBackMs?.toFixed(0)} ms, durable ${durable}/${durableExpected ?? '-'}${dead}, ${run.duplicates} duplicates, CPU avg ${(run.cpuAvg * 100).toFixed(0)} %${run.redisCpuAvg === undefined ? '' : `, redis-server ${(run.redisCpuAvg * 100).toFixed(0)} %`}${err ? `, first error: ${err}` : ''}`,
  );
  return run;
}

type Kind = 'lib' | 'raw' | 'better-sse' | 'socket.io';
const FILES: Record<Kind, string> = {
  lib: 'servers/lib.ts',
  raw: 'servers/raw.ts',
  'better-sse': 'servers/better-sse.ts',
  'socket.io': 'servers/socketio.ts',
};

/** One graceful restart of a single server on a fixed port. */
async function restart(kind: Kind, spreadMs?: number): Promise<StormRun> {
  const label = kind === 'lib' ? `koa-sse-server, reconnectTimeMs ${spreadMs}` : kind;
  console.error(`restart: ${label}`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sse-storm-'));
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_PORT: String(port) };
  if (kind === 'lib') Object.assign(env, { BENCH_QOS_FILE: join(dir, 'q.db'), BENCH_RECONNECT_MS: String(spreadMs) });
  const procs: Rpc[] = [];
  try {
    const old = (await spawn(FILES[kind], [], [], `${kind} server`, env)).rpc;
    procs.push(old);
    await old.call('listen');
    const clients = await startClients(kind === 'socket.io' ? 'socketio' : 'sse', [port]);
    procs.push(...clients);
    // Durable messages: sent while the users are online, with ack=1 streams that do not
    // acknowledge, so all 5 per user are still pending at the restart (a queue that has not
    // been confirmed yet; the same replay as for messages sent while the user was away).
    if (kind === 'lib') {
      await old.call('durable', { users: N, perUser: PER_USER }, 120_000);
      await waitDurable(clients, N * PER_USER);
    }
    // The next process is started (modules loaded) before the old one stops, as a deploy would.
    const next = (await spawn(FILES[kind], [], [], `${kind} server (new)`, env)).rpc;
    procs.push(next);
    await Promise.all(clients.map((c) => c.call('arm')));
    const t0 = nowUs();
    const exited = new Promise((r) => old.child.once('exit', r));
    await old.call('unlisten');
    const shutting = old.call<{ start: CpuMark; end: CpuMark }>('shutdown', {}, 30_000);
    const listening = await next.call<CpuMark>('listen', {}, 30_000);
    const shut = await shutting;
    await Promise.race([exited, sleep(10_000)]);
    if (old.child.exitCode === null) old.child.kill('SIGKILL');
    const pace = next.call<{ sent: number }>('pace', { rate: LIVE_RATE, users: N, maxSeconds: 120 }, 180_000);
    const planned = kind === 'lib' ? 250 + spreadMs! : kind === 'better-sse' ? 2000 : kind === 'socket.io' ? 5000 : 0;
    const { cpuSamples, complete } = await watch(clients, [next], t0, N, kind === 'lib' ? N * PER_USER : 0, planned + STORM_LIMIT_MS);
    await next.call('stopPace');
    const { sent } = await pace;
    return await collect(clients, t0, label, N, kind === 'lib' ? N * PER_USER : undefined, sent, cpuSamples, {
      kind,
      spreadMs,
      complete,
      closeMs: (shut.end.t - shut.start.t) / 1000,
      downMs: (listening.t - t0) / 1000,
    });
  } finally {
    for (const p of procs) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Three nodes, one killed (SIGKILL); its users reconnect to the other two. `lan`: static peers,
 * a SQLite file per node; `lan-copies`: the same with two copies of each durable message
 * (`qos.replication`); `redis`: the Redis engine on a redis-server of its own, stopped (and
 * its directory removed) at the end, also on failure.
 */
async function nodeLoss(engine: 'lan' | 'lan-copies' | 'redis', spreadMs: number): Promise<StormRun> {
  const name = { lan: 'LAN engine, 1 copy', 'lan-copies': 'LAN engine, 2 copies', redis: 'Redis engine' }[engine];
  const label = `cluster of 3 (${name}), one node killed, reconnectTimeMs ${spreadMs}`;
  console.error(`node loss: ${label}`);
  const dir = engine === 'redis' ? undefined : mkdtempSync(join(tmpdir(), 'sse-storm-'));
  const procs: Rpc[] = [];
  let redis: RedisProcess | undefined;
  try {
    let common: NodeJS.ProcessEnv;
    if (engine === 'redis') {
      redis = await startRedisServer();
      common = { SSE_REDIS_URL: redis.url };
    } else common = { SSE_CLUSTER_SECRET: randomBytes(32).toString('base64') };
    const nodes = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const env = {
          ...process.env,
          ...common,
          SSE_RECONNECT_MS: String(spreadMs),
          ...(dir === undefined ? {} : { SSE_QOS_FILE: join(dir, `n${i}.db`) }),
          // One copy as before issue 29 (the default is 2 now), or two.
          ...(engine === 'redis' ? {} : { SSE_QOS_COPIES: engine === 'lan' ? '1' : '2' }),
        };
        const { rpc } = await spawn('cluster-node.ts', [], [], `node ${i}`, env);
        procs.push(rpc);
        return rpc;
      }),
    );
    // Each node reported `ready` once it listened. Redis-engine nodes find each other in Redis.
    const addresses = await Promise.all(nodes.map((n) => n.call<{ web: number; internal?: string }>('address')));
    if (engine !== 'redis') await Promise.all(nodes.map((n) => n.call('setPeers', { peers: addresses.map((a) => a.internal) })));
    for (const n of nodes) {
      const until = Date.now() + 20_000;
      while ((await n.call<number>('peers')) !== 2) {
        if (Date.now() > until) throw new Error('cluster did not form');
        await sleep(100);
      }
    }
    const ports = addresses.map((a) => a.web);
    const clients = await startClients('sse', ports);
    procs.push(...clients);
    const sent = await Promise.all(nodes.map((n, i) => n.call<number>('durable', { users: N, perUser: PER_USER, node: i, nodes: 3 }, 120_000)));
    await waitDurable(
      clients,
      sent.reduce((a, b) => a + b, 0),
    );
    // The killed node is node 2: its users are u<k> with k mod 3 = 2; of their messages those
    // with (k + j) mod 3 = 2 were sent through it. On the LAN engine it owns them (they are in
    // its file); on the Redis engine no node owns a message (one queue, one store tag for all).
    const moved: string[] = [];
    let viaSurvivors = 0;
    let viaDead = 0;
    for (let k = 2; k < N; k += 3) {
      moved.push(`u${k}`);
      for (let j = 0; j < PER_USER; j++) {
        if ((k + j) % 3 === 2) viaDead++;
        else viaSurvivors++;
      }
    }
    // The clients count the messages sent through node 2 apart.
    await Promise.all(clients.map((c) => c.call('arm', { mark: { nodes: 3, node: 2 } })));
    const t0 = nowUs();
    nodes[2]!.child.kill('SIGKILL');
    // A load balancer's health check takes the dead node out; its own delay is not measured.
    await Promise.all(clients.map((c) => c.call('setPorts', { ports: ports.slice(0, 2) })));
    const survivors = nodes.slice(0, 2);
    const paces = survivors.map((n) => n.call<{ sent: number }>('paceRandom', { ids: moved, rate: LIVE_RATE / 2, maxSeconds: 120 }, 180_000));
    // The storm is over when what can be delivered was: on the LAN engine with one copy not what the dead node holds.
    const deliverable = engine === 'lan' ? viaSurvivors : viaSurvivors + viaDead;
    const { cpuSamples, complete } = await watch(clients, survivors, t0, moved.length, deliverable, spreadMs + STORM_LIMIT_MS, redis);
    await Promise.all(survivors.map((n) => n.call('stopPace')));
    const liveSent = (await Promise.all(paces)).reduce((s, p) => s + p.sent, 0);
    return await collect(clients, t0, label, moved.length, viaSurvivors + viaDead, liveSent, cpuSamples, {
      kind: 'cluster',
      engine,
      spreadMs,
      complete,
      viaDead,
    });
  } finally {
    for (const p of procs) await stop(p);
    await redis?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

const runs: StormRun[] = [];
if (ONLY.has('lib')) for (const spread of SPREADS) runs.push(await restart('lib', spread));
for (const kind of ['raw', 'better-sse', 'socket.io'] as const) if (ONLY.has(kind)) runs.push(await restart(kind));
if (ONLY.has('cluster')) runs.push(await nodeLoss('lan', 5000));
if (ONLY.has('cluster-copies')) runs.push(await nodeLoss('lan-copies', 5000));
if (ONLY.has('cluster-redis')) runs.push(await nodeLoss('redis', 5000));

const seconds = (Date.now() - started) / 1000;
const header =
  `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`npm run bench:storm${QUICK ? ' -- --quick' : ''}\` ` +
  `(${seconds.toFixed(0)} s) on ${environment(root)}.`;
const text = stormTables(runs, { n: N, perUser: PER_USER, liveRate: LIVE_RATE, clients: CLIENTS, header });
console.log(text);
if (WRITE) {
  writeFileSync(join(root, 'docs', 'bench-storm.svg'), stormChart(runs));
  const file = join(root, 'BENCHMARKS.md');
  const md = readFileSync(file, 'utf8');
  const start = '<!-- bench:storm:start (generated by `npm run bench:storm`; text outside these markers is kept) -->';
  const end = '<!-- bench:storm:end -->';
  const i = md.indexOf(start);
  const j = md.indexOf(end);
  if (i < 0 || j < 0) throw new Error(`BENCHMARKS.md has no storm markers`);
  writeFileSync(file, `${md.slice(0, i + start.length)}\n${text}\n${md.slice(j)}`);
  console.error('wrote BENCHMARKS.md and docs/bench-storm.svg');
}
process.exit(0);
