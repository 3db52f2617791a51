// Fan-out cost, servers up at once: the burst table's measurement (`sendAll` bursts to `n`
// streams, 10 broadcasts per event-loop turn, as fanout.ts), but every server holds its streams
// for the whole run and the bursts alternate between them, each going first in turn, so that
// this noisy machine's drift hits them alike. Per round and server: one burst of about
// `deliveries` deliveries; the server's CPU per delivery (process.cpuUsage, from the first
// broadcast until the clients received the last event), split by thread from /proc.
// Loopback only; bounded in count and time; stops by itself.
//
//   npx tsx scripts/bench/fanout-abba.ts [--servers raw-socket,lib] [--n 10000] [--rounds 6] [--deliveries 400000]
//                                        [--phase burst|targeted] [--sends 20000]
//
// --phase targeted: instead of bursts, fanout.ts's targeted table (`sendByUserId` to a random one
// of the `n` users, one stream each, 100 sends per event-loop turn), `--sends` per round and
// server; the server's CPU per send.
//
// A server is raw-socket (the hand-tuned socket-write server), raw (res.write), lib (the working
// tree), lib@<commit> (that commit's build, beside the working tree's) or lib@<dir> (a lib/
// folder: a bench-only build with a feature switched off); `+nowindow` after a lib server turns
// its recovery window off (no `id:` on ordinary events).
import { isAbsolute } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { abbaOrder, openStreams, perRound, ratioCell, shutDown, startServer, type BenchServer as Server } from './abba.js';
import { opt } from './cli.js';
import { checkout } from './checkout.js';
import { loadAverage, threadTimes } from './cpu-time.js';
import { stopAfter } from './procs.js';
import { median } from './stats.js';

const specs = opt('servers', 'raw-socket,lib').split(',');
const N = Number(opt('n', '10000'));
const ROUNDS = Number(opt('rounds', '6'));
const DELIVERIES = Number(opt('deliveries', '400000'));
const PHASE = opt('phase', 'burst');
const SENDS = Number(opt('sends', '20000'));
const BATCH = 10;
/** Targeted sends per event-loop turn (fanout.ts's `targetedBatch`). */
const TARGETED_BATCH = 100;
const CLIENTS = 2;
if (!(N > 0 && N <= 10_000)) throw new Error('--n must be 1..10000');
if (!(ROUNDS > 0 && ROUNDS <= 40)) throw new Error('--rounds must be 1..40');
if (!(DELIVERIES > 0 && DELIVERIES <= 5_000_000)) throw new Error('--deliveries must be 1..5000000');
if (PHASE !== 'burst' && PHASE !== 'targeted') throw new Error('--phase must be burst or targeted');
if (!(SENDS > 0 && SENDS <= 1_000_000)) throw new Error('--sends must be 1..1000000');
const LIMIT_MS = 20 * 60_000;
stopAfter(LIMIT_MS, `fanout-abba: still running after ${LIMIT_MS / 60_000} min, stopping`);

const FILES: Record<string, string> = { raw: 'servers/raw.ts', 'raw-socket': 'servers/raw-socket.ts', lib: 'servers/lib.ts' };

async function start(spec: string, slot: number): Promise<Server> {
  const noWindow = spec.endsWith('+nowindow');
  const [kind, build] = spec.replace(/\+nowindow$/, '').split('@') as [string, string | undefined];
  const file = FILES[kind];
  if (file === undefined || ((build !== undefined || noWindow) && kind !== 'lib')) throw new Error(`unknown server ${spec}`);
  const fromDir = build !== undefined && isAbsolute(build);
  const dir = build === undefined || fromDir ? undefined : checkout(build);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (dir !== undefined) env.BENCH_LIB_DIR = `${dir}/lib`;
  if (fromDir) env.BENCH_LIB_DIR = build;
  if (noWindow) env.BENCH_RECOVERY = 'off';
  const server = await startServer({ file, label: spec, env, dir, clients: CLIENTS });
  await openStreams(server, N, 128, (i) => Array.from({ length: 8 }, (_, a) => `127.60.${slot * CLIENTS + i}.${a + 1}`));
  for (let i = 0; i < 500 && (await server.rpc.call<number>('count')) < N; i++) await sleep(20);
  return server;
}

interface Sample {
  /** Server CPU µs per delivery. */
  cpuUs: number;
  perSec: number;
  user: number;
  sys: number;
  helpers: number;
}

/** One measured phase on `server`: a burst, or `SENDS` targeted sends (`--phase`); CPU per delivery. */
async function burst(server: Server): Promise<Sample> {
  const k = Math.max(BATCH, Math.round(DELIVERIES / N / BATCH) * BATCH);
  const targeted = PHASE === 'targeted';
  const expected = targeted ? SENDS : k * N;
  await Promise.all(server.clients.map((c) => c.call('expect')));
  const pid = server.rpc.child.pid!;
  const t0 = threadTimes(pid);
  const { start } = await server.rpc.call<{ start: { t: number; cpu: number } }>(
    PHASE,
    targeted ? { m: SENDS, users: N, batch: TARGETED_BATCH } : { k, batch: BATCH },
    120_000,
  );
  let total = 0;
  let lastAt: number;
  let lastProgress = Date.now();
  for (;;) {
    const statuses = await Promise.all(server.clients.map((c) => c.call<{ received: number; lastAt: number }>('status')));
    const now = statuses.reduce((s, x) => s + x.received, 0);
    lastAt = Math.max(...statuses.map((s) => s.lastAt));
    if (now !== total) lastProgress = Date.now();
    total = now;
    if (total >= expected) break;
    if (Date.now() - lastProgress > 10_000) throw new Error(`${server.label}: burst stalled at ${total} of ${expected}`);
    await sleep(10);
  }
  const end = await server.rpc.call<{ cpu: number }>('cpu');
  const t1 = threadTimes(pid);
  return {
    cpuUs: (end.cpu - start.cpu) / expected,
    perSec: (expected / Math.max(1, lastAt - start.t)) * 1e6,
    user: (t1.user - t0.user) / expected,
    sys: (t1.sys - t0.sys) / expected,
    helpers: (t1.helpers - t0.helpers) / expected,
  };
}

const servers: Server[] = [];
try {
  for (const [i, spec] of specs.entries()) servers.push(await start(spec, i));
  // Warm-up: one burst each, not counted (compiles every server's send path).
  for (const s of servers) await burst(s);
  const samples = specs.map(() => [] as Sample[]);
  for (let r = 1; r <= ROUNDS; r++) {
    for (const i of abbaOrder(specs.length, r)) samples[i]!.push(await burst(servers[i]!));
    process.stderr.write(`round ${r}/${ROUNDS}: ${specs.map((spec, i) => `${spec} ${samples[i]!.at(-1)!.cpuUs.toFixed(3)} µs`).join(', ')}\n`);
  }
  const ref = samples[0]!;
  const k = Math.max(BATCH, Math.round(DELIVERIES / N / BATCH) * BATCH);
  const what =
    PHASE === 'targeted'
      ? `${SENDS.toLocaleString('en')} targeted sends (${TARGETED_BATCH} per turn) to random users`
      : `bursts of ${k} broadcasts (${BATCH} per turn, ${(k * N).toLocaleString('en')} deliveries)`;
  console.log(
    `Node ${process.version}; ${N.toLocaleString('en')} streams per server, ${what}, ${ROUNDS} rounds, order rotated; load average ${loadAverage()} at the end.`,
  );
  console.log(`Medians over rounds; × ${specs[0]} = median of the per-round ratios (range). CPU µs per delivery, split by thread.\n`);
  console.log(
    `| server | deliveries/s | CPU µs / delivery | CPU × ${specs[0]} | ${specs[0]} CPU / this | main: JS | main: kernel | helper threads |`,
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [i, label] of specs.entries()) {
    const xs = samples[i]!;
    const cpu = perRound(xs, ref, (x) => x.cpuUs);
    const inv = cpu.map((x) => 1 / x);
    const m = (f: (x: Sample) => number, d = 3) => median(xs.map(f)).toFixed(d);
    console.log(
      `| ${label} | ${m((x) => x.perSec, 0)} | ${m((x) => x.cpuUs)} | ${ratioCell(cpu, 3)} | ${median(inv).toFixed(3)}× | ${m((x) => x.user)} | ${m((x) => x.sys)} | ${m((x) => x.helpers)} |`,
    );
  }
} finally {
  for (const s of servers) await shutDown(s);
}
