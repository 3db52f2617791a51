// Workers on one port (`npm run bench:workers`): koa-sse-server in one process against the same
// app under startWorkers, side by side in one run, on loopback, bounded in count and time.
//   1. streams held on one port: one process, then two workers; HELD streams opened by four
//      load-client processes (each process may hold at most ~19,900 sockets here: the
//      per-process file limit is 20,000), from many loopback source addresses;
//   2. fan-out at FANOUT streams: one worker and two workers, interleaved (1, 2, 2, 1), a burst
//      of sendAll from one worker (count-free: the other worker answers nothing); deliveries/s
//      and server CPU (primary + workers, /proc) per delivery. The load clients run on the same
//      two cores: a figure above what the cores left to the server allow is not measurable here.
//   npx tsx scripts/bench/workers.ts [--quick] [--held 38000] [--fanout 10000]
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Rpc } from './ipc.js';
import { flag, opt } from './cli.js';
import { spawn, stop, stopAfter } from './procs.js';
import { Histogram } from './stats.js';

const QUICK = flag('quick');
const HELD = Number(opt('held') ?? (QUICK ? 4000 : 38_000));
const FANOUT = Number(opt('fanout') ?? (QUICK ? 2000 : 10_000));
const CLIENTS = 4;
/** Streams per loopback source address (the kernel's port search slows down as one fills). */
const PER_ADDRESS = 1000;
const BURST_DELIVERIES = QUICK ? 200_000 : 1_000_000;
const BATCH = 10;

stopAfter((QUICK ? 4 : 15) * 60_000, 'bench:workers: time limit reached, stopping');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

interface Setup {
  server: Rpc;
  clients: Rpc[];
  live: number;
  failed: number;
  /** Not opened: each client stops after 200 failures. */
  notTried: number;
  firstError?: string;
}

/** A server (workers = 0: one process) and CLIENTS load clients holding `n` streams. */
async function setUp(workers: number, n: number, addressBase: number): Promise<Setup> {
  const env = { ...process.env, BENCH_WORKERS: String(workers), BENCH_SHARED_PORT: String(await freePort()) };
  const { rpc: server, ready } = await spawn('servers/lib-workers.ts', [], [], `server (${workers} workers)`, env);
  const port = ready as number;
  const clients: Rpc[] = [];
  try {
    for (let i = 0; i < CLIENTS; i++) clients.push((await spawn('client.ts', ['sse', String(port)], [], `client ${i}`)).rpc);
    const share = Math.ceil(n / CLIENTS);
    const opened = await Promise.all(
      clients.map((c, i) => {
        const from = i * share;
        const to = Math.min(n, from + share);
        // Fresh source addresses per client and per set-up: 127.<base>.<i>.<j>.
        const localAddresses = Array.from({ length: Math.ceil((to - from) / PER_ADDRESS) }, (_, j) => `127.${addressBase}.${i + 1}.${j + 1}`);
        return c.call<{ opened: number; failed: number; notTried: number; firstError?: string }>(
          'connect',
          { from, to, concurrency: 64, localAddresses, headTimeoutMs: 10_000 },
          300_000,
        );
      }),
    );
    const failed = opened.reduce((s, o) => s + o.failed, 0);
    const notTried = opened.reduce((s, o) => s + o.notTried, 0);
    let live = 0;
    for (let i = 0; i < 100; i++) {
      live = await server.call<number>('count');
      if (live >= n - failed - notTried) break;
      await sleep(50);
    }
    const firstError = opened.find((o) => o.firstError)?.firstError;
    return { server, clients, live, failed, notTried, ...(firstError === undefined ? {} : { firstError }) };
  } catch (err) {
    for (const c of clients) await stop(c);
    await stop(server);
    throw err;
  }
}

async function tearDown(s: Setup): Promise<void> {
  await stop(s.server);
  for (const c of s.clients) await stop(c);
}

interface Burst {
  perSec: number;
  cpuPerDeliveryUs: number;
  serverCores: number;
  clientCores: number;
  delivered: number;
  expected: number;
}

async function burst(s: Setup): Promise<Burst> {
  const k = Math.max(BATCH, Math.round(BURST_DELIVERIES / s.live / BATCH) * BATCH);
  const expected = k * s.live;
  await Promise.all(s.clients.map((c) => c.call('expect')));
  const clientCpu0 = await Promise.all(s.clients.map((c) => c.call<number>('cpu')));
  const { start } = await s.server.call<{ start: { t: number; cpu: number } }>('burst', { k, batch: BATCH }, 300_000);
  let total = 0;
  let lastProgress = Date.now();
  for (;;) {
    const statuses = await Promise.all(s.clients.map((c) => c.call<{ received: number }>('status')));
    const now = statuses.reduce((a, x) => a + x.received, 0);
    if (now !== total) lastProgress = Date.now();
    total = now;
    if (total >= expected || Date.now() - lastProgress > 5000) break;
    await sleep(25);
  }
  const end = await s.server.call<{ t: number; cpu: number }>('cpu');
  const results = await Promise.all(s.clients.map((c) => c.call<{ lastAt: number; hist: Array<[number, number]>; cpu: number }>('result')));
  const hist = new Histogram();
  let lastAt = 0;
  let clientCpu = 0;
  for (const [i, r] of results.entries()) {
    hist.addSparse(r.hist);
    lastAt = Math.max(lastAt, r.lastAt);
    clientCpu += r.cpu - clientCpu0[i]!;
  }
  const windowUs = Math.max(1, lastAt - start.t);
  return {
    perSec: (hist.total / windowUs) * 1e6,
    cpuPerDeliveryUs: (end.cpu - start.cpu) / Math.max(1, hist.total),
    serverCores: (end.cpu - start.cpu) / windowUs,
    clientCores: clientCpu / windowUs,
    delivered: hist.total,
    expected,
  };
}

const int = (v: number): string => Math.round(v).toLocaleString('en');
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
console.log(`# Workers on one port, ${new Date().toISOString()}, ${machine}${QUICK ? ' (quick)' : ''}; the machine is shared (loaded)`);

// 1. Streams held. One process cannot hold more than its file limit (20,000 here, less the few
// it uses itself); asked for more it leaves the connections it cannot accept hanging, so it is
// asked for what it can hold: HELD / 2. Two workers are asked for HELD.
const held: { name: string; s: Pick<Setup, 'live' | 'failed' | 'notTried' | 'firstError'> }[] = [];
for (const [i, workers] of [0, 2].entries()) {
  const n = workers === 0 ? Math.floor(HELD / 2) : HELD;
  const name = `${workers === 0 ? 'one process' : `${workers} workers`}, ${int(n)} opened`;
  console.error(`bench:workers: ${name}…`);
  const s = await setUp(workers, n, 10 + i);
  held.push({
    name,
    s: { live: s.live, failed: s.failed, notTried: s.notTried, ...(s.firstError === undefined ? {} : { firstError: s.firstError }) },
  });
  await tearDown(s);
  await sleep(2000);
}
console.log(`\n| streams held on one port (opened by ${CLIENTS} client processes) | held | failed | not tried (a client stops after 200 failures) |`);
console.log('|---|---|---|---|');
for (const { name, s } of held) {
  console.log(`| ${name} | ${int(s.live)} | ${int(s.failed)}${s.firstError ? ` (${s.firstError.slice(0, 60)})` : ''} | ${int(s.notTried)} |`);
}

// 2. Fan-out, interleaved 1, 2, 2, 1 workers.
const fan: { workers: number; b: Burst }[] = [];
for (const [i, workers] of [1, 2, 2, 1].entries()) {
  console.error(`bench:workers: fan-out at ${FANOUT} streams, ${workers} worker(s), round ${i + 1}…`);
  const s = await setUp(workers, FANOUT, 20 + i);
  try {
    fan.push({ workers, b: await burst(s) });
  } finally {
    await tearDown(s);
  }
}
console.log(
  `\n| fan-out burst at ${int(FANOUT)} streams (sendAll from one worker, count-free) | deliveries/s | server CPU µs per delivery | server cores busy | client cores busy | delivered |`,
);
console.log('|---|---|---|---|---|---|');
for (const [i, { workers, b }] of fan.entries()) {
  console.log(
    `| round ${i + 1}: ${workers} worker${workers > 1 ? 's' : ''} | ${int(b.perSec)} | ${b.cpuPerDeliveryUs.toFixed(2)} | ${b.serverCores.toFixed(2)} | ${b.clientCores.toFixed(2)} | ${int(b.delivered)}/${int(b.expected)} |`,
  );
}
const mean = (w: number, f: (b: Burst) => number): number => {
  const list = fan.filter((x) => x.workers === w).map((x) => f(x.b));
  return list.reduce((a, b) => a + b, 0) / list.length;
};
console.log(
  `\nmean: 1 worker ${int(mean(1, (b) => b.perSec))}/s at ${mean(1, (b) => b.cpuPerDeliveryUs).toFixed(2)} µs; 2 workers ${int(mean(2, (b) => b.perSec))}/s at ${mean(2, (b) => b.cpuPerDeliveryUs).toFixed(2)} µs (ratio ${(mean(2, (b) => b.perSec) / mean(1, (b) => b.perSec)).toFixed(2)}x)`,
);
process.exit(0);
