// Connect cost, servers up at once: the connect table's measurement (streams opened and held,
// the server's CPU per stream opened), but every server stays up and warm and the rounds
// alternate between them, each going first in turn, so that this noisy machine's drift hits
// them alike. Per round and server: `n` streams opened by 2 client processes, 128 handshakes in
// flight each (as fanout.ts), held until the server counts them all, then closed.
// Loopback only, each round and server from fresh source addresses (127.<40+round>.<server,client>.1–8); bounded in
// count and time; stops by itself.
//
//   npx tsx scripts/bench/connect-abba.ts [--servers raw,koa,lib] [--n 10000] [--rounds 8] [--fresh] [--prof <dir>]
//
// --fresh starts every server anew for each round, with the connect table's warm-up of 50
// streams: what a process just started pays (a deploy), code not yet optimized, heap not yet
// grown. Without it, the servers stay up: the steady-state cost.
//
// A server is raw, koa (bare Koa, the floor of any Koa plugin), lib (the working tree),
// lib@<commit> (that commit's lib/, beside the working tree's) or lib@<absolute path of a lib/
// folder> (a bench-only build with a feature switched off). A `+dist` after either
// compiles that lib/ with tsc first and runs the output, as the package ships it (dist/lib):
// without it, the server runs the TypeScript through tsx, whose keepNames transpile gives
// every closure a request creates a `defineProperty` that the published build does not have.
import { setTimeout as sleep } from 'node:timers/promises';
import { abbaOrder, openStreams, perRound, ratioCell, shutDown, startServer, type BenchServer as Server } from './abba.js';
import { flag, opt } from './cli.js';
import { buildCheckout, checkout } from './checkout.js';
import { threadTimes, type ThreadTimes } from './cpu-time.js';
import { stopAfter } from './procs.js';
import { median } from './stats.js';

const specs = opt('servers', 'raw,koa,lib').split(',');
const N = Number(opt('n', '10000'));
const ROUNDS = Number(opt('rounds', '8'));
/** Each round on new processes, warmed up as fanout.ts's connect table does (50 streams): the cold cost. */
const FRESH = flag('fresh');
const CLIENTS = 2;
const CONCURRENCY = 128;
/** Source addresses per client and round (the last byte): ≤ 1,000 streams each. */
const ADDRESSES = Array.from({ length: 8 }, (_, i) => i + 1);
if (!(N > 0 && N <= 10_000)) throw new Error('--n must be 1..10000');
// Each round has source addresses of its own (127.<40 + round>.…): at most 120 rounds.
if (!(ROUNDS > 0 && ROUNDS <= 120)) throw new Error('--rounds must be 1..120');
// Bounded: the whole run stops itself after this long.
const LIMIT_MS = 30 * 60_000;
stopAfter(LIMIT_MS, `connect-abba: still running after ${LIMIT_MS / 60_000} min, stopping`);

const FILES: Record<string, string> = { raw: 'servers/raw.ts', koa: 'servers/koa.ts', lib: 'servers/lib.ts' };

async function start(spec: string): Promise<Server> {
  const built = spec.endsWith('+dist');
  const [kind, commit] = spec.replace(/\+dist$/, '').split('@') as [string, string | undefined];
  const file = FILES[kind];
  if (file === undefined || ((commit !== undefined || built) && kind !== 'lib')) {
    throw new Error(`unknown server ${spec}: raw, koa, lib, lib@<commit> or lib@<lib folder>, each lib with an optional +dist`);
  }
  const dir = commit === undefined && !built ? undefined : checkout(commit ?? '');
  const env =
    dir === undefined
      ? process.env
      : built
        ? { ...process.env, BENCH_LIB_DIR: buildCheckout(dir), BENCH_LIB_BUILT: '1' }
        : { ...process.env, BENCH_LIB_DIR: `${dir}/lib` };
  // --prof <dir>: a --cpu-prof profile of every server into <dir> (written when it stops).
  const prof = opt('prof', '');
  const profArgs = prof !== '' ? ['--cpu-prof', '--cpu-prof-interval', '100', `--cpu-prof-dir=${prof}`] : [];
  return startServer({ file, label: spec, env, execArgv: profArgs, dir, clients: CLIENTS });
}

async function waitCount(server: Server, want: (count: number) => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (want(await server.rpc.call<number>('count'))) return;
    await sleep(20);
  }
  throw new Error(`${server.label}: the server's stream count did not settle`);
}

/** Opens `n` streams, answers the server's CPU µs per stream and the streams opened per second. */
async function round(server: Server, r: number, slot: number): Promise<Sample> {
  const pid = server.rpc.child.pid!;
  const threads0 = threadTimes(pid);
  const cpu0 = await server.rpc.call<{ cpu: number }>('cpu');
  const opened = await openStreams(server, N, CONCURRENCY, (i) => ADDRESSES.map((a) => `127.${40 + r}.${slot * CLIENTS + i}.${a}`));
  await waitCount(server, (c) => c >= N);
  const cpu1 = await server.rpc.call<{ cpu: number }>('cpu');
  const threads1 = threadTimes(pid);
  const us = Math.max(...opened.map((o) => o.end)) - Math.min(...opened.map((o) => o.start));
  for (const c of server.clients) await c.call('closeAll');
  await waitCount(server, (c) => c === 0);
  const per = (k: keyof ThreadTimes) => (threads1[k] - threads0[k]) / N;
  return { cpuUs: (cpu1.cpu - cpu0.cpu) / N, perSec: (N / us) * 1e6, split: { user: per('user'), sys: per('sys'), helpers: per('helpers') } };
}

interface Sample {
  cpuUs: number;
  perSec: number;
  /** One stream's CPU (µs), split by thread. */
  split: ThreadTimes;
}

/** Opens and closes the connect table's 50 warm-up streams. */
async function warmUp(server: Server): Promise<void> {
  await server.clients[0]!.call('connect', { from: N, to: N + 50, concurrency: 16 }, 60_000);
  await server.clients[0]!.call('closeAll');
  await waitCount(server, (c) => c === 0);
}

const servers: Server[] = [];
try {
  if (!FRESH) {
    for (const spec of specs) servers.push(await start(spec));
    // Warm-up: one round each, not counted (compiles every server's connect path).
    for (const [i, s] of servers.entries()) await round(s, 0, i);
  }
  const samples = specs.map(() => [] as Sample[]);
  for (let r = 1; r <= ROUNDS; r++) {
    // Each server goes first, and last, in turn.
    for (const i of abbaOrder(specs.length, r)) {
      if (FRESH) {
        const s = await start(specs[i]!);
        try {
          await warmUp(s);
          samples[i]!.push(await round(s, r, i));
        } finally {
          await shutDown(s);
        }
      } else {
        samples[i]!.push(await round(servers[i]!, r, i));
      }
    }
    process.stderr.write(
      `round ${r}/${ROUNDS}: ${specs.map((spec, i) => `${spec} ${samples[i]!.at(-1)!.cpuUs.toFixed(0)} µs ${samples[i]!.at(-1)!.perSec.toFixed(0)}/s`).join(', ')}\n`,
    );
  }
  const ref = samples[0]!;
  console.log(
    `Node ${process.version}; ${N.toLocaleString('en')} streams per round, ${ROUNDS} rounds, ${FRESH ? 'each server started anew per round (cold)' : 'servers up at once (warm)'}, order rotated; ${CLIENTS} clients × ${CONCURRENCY} in flight.`,
  );
  console.log(`Medians over rounds; × ${specs[0]} = median of the per-round ratios (range in brackets). CPU per stream split by thread (µs).\n`);
  console.log(
    `| server | streams/s | × ${specs[0]} | CPU µs / stream | CPU × ${specs[0]} | main thread: JS | main thread: kernel | V8 helper threads |`,
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [i, label] of specs.entries()) {
    const xs = samples[i]!;
    const rate = perRound(xs, ref, (x) => x.perSec);
    const cpu = perRound(xs, ref, (x) => x.cpuUs);
    const m = (f: (x: Sample) => number) => median(xs.map(f)).toFixed(1);
    console.log(
      `| ${label} | ${median(xs.map((x) => x.perSec)).toFixed(0)} | ${ratioCell(rate, 2)} | ${m((x) => x.cpuUs)} | ${ratioCell(cpu, 2)} | ${m((x) => x.split.user)} | ${m((x) => x.split.sys)} | ${m((x) => x.split.helpers)} |`,
    );
  }
} finally {
  for (const s of servers) await shutDown(s);
}
