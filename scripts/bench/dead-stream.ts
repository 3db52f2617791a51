// Cost and effect of noticing silent deaths (issue 23).
//   cost (loopback): the library's server with `deadStreamTimeoutMs` on (TCP_USER_TIMEOUT set
//     on every stream's socket through net-keepalive) and off, side by side in one run, in
//     ABBA order: server CPU per connect, server CPU per heartbeat tick, memory after GC with
//     N streams open; and the price of one setsockopt call through net-keepalive.
//   --detect (root: network namespaces, as the tests make them): how long it takes, with the
//     default options, until a browser whose link is cut without FIN is closed (several
//     browsers cut at different moments of the heartbeat), and until a cluster node whose link
//     is cut is marked down.
//
//   npx tsx scripts/bench/dead-stream.ts [--n 10000] [--detect]
// Loopback and test-made namespaces only; every phase has a time limit; the run stops by itself.
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUserTimeout, userTimeoutUnavailable } from '../../lib/local/tcp-user-timeout.js';
import type { LanHost } from '../../test/helpers/lan.js';
import { netnsUnavailable, NsProcess, privateLan } from '../../test/helpers/netns.js';
import { flag, opt } from './cli.js';
import { spawn, stop, stopAfter } from './procs.js';
import { median } from './stats.js';

const N = Number(opt('n') ?? 10_000);
if (!(N >= 100 && N <= 15_000)) throw new Error('--n must be 100..15000');
const DETECT = flag('detect');
const HEARTBEAT_MS = 1000;
const TICKS = 10;
stopAfter(12 * 60_000, 'dead-stream: overall time limit reached, stopping');

interface Round {
  mode: 'on' | 'off';
  connectUs: number;
  tickUs: number;
  rss: number;
  heap: number;
}

/** Loopback source addresses for one round: fresh ones, so that TIME_WAIT of the last round does not slow the client's port search. */
function sources(round: number): string[] {
  const perRound = Math.ceil(N / 1000);
  return Array.from({ length: perRound }, (_, i) => `127.0.${10 + round}.${i + 1}`);
}

async function round(mode: 'on' | 'off', index: number): Promise<Round> {
  const env = { ...process.env, BENCH_HEARTBEAT_MS: String(HEARTBEAT_MS), BENCH_DEAD_STREAM_MS: mode === 'on' ? '25000' : '0' };
  const server = await spawn('servers/lib.ts', [], ['--expose-gc'], `server ${mode}`, env);
  const port = server.ready as number;
  const client = await spawn('client.ts', ['sse', String(port)], [], 'client');
  try {
    const cpu0 = (await server.rpc.call<{ cpu: number }>('cpu')).cpu;
    const opened = await client.rpc.call<{ opened: number; failed: number; firstError?: string }>(
      'connect',
      { from: 0, to: N, concurrency: 200, localAddresses: sources(index) },
      120_000,
    );
    if (opened.failed > 0) throw new Error(`${opened.failed} streams failed: ${opened.firstError}`);
    const cpu1 = (await server.rpc.call<{ cpu: number }>('cpu')).cpu;
    const mem = await server.rpc.call<NodeJS.MemoryUsage>('mem');
    // Heartbeats only from here on: nothing else is sent.
    await sleep(HEARTBEAT_MS);
    const t0 = performance.now();
    const c0 = (await server.rpc.call<{ cpu: number }>('cpu')).cpu;
    await sleep(TICKS * HEARTBEAT_MS);
    const c1 = (await server.rpc.call<{ cpu: number }>('cpu')).cpu;
    const ticks = (performance.now() - t0) / HEARTBEAT_MS;
    return { mode, connectUs: (cpu1 - cpu0) / N, tickUs: ((c1 - c0) / ticks) * (10_000 / N), rss: mem.rss, heap: mem.heapUsed };
  } finally {
    await stop(client.rpc);
    await stop(server.rpc);
  }
}

/** µs per setUserTimeout call through net-keepalive, on one loopback socket. */
async function callCost(): Promise<number> {
  const why = userTimeoutUnavailable();
  if (why !== undefined) throw new Error(why);
  let accepted: net.Socket | undefined;
  const server = net.createServer((s) => (accepted = s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  while (accepted === undefined) await sleep(5);
  const k = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < k; i++) setUserTimeout(accepted, 25_000);
  const us = ((performance.now() - t0) * 1000) / k;
  client.destroy();
  accepted.destroy();
  server.close();
  return us;
}

async function cost(): Promise<void> {
  const rounds: Round[] = [];
  const order = ['on', 'off', 'off', 'on'] as const;
  for (const [i, mode] of order.entries()) {
    const r = await round(mode, i);
    console.log(
      `  ${mode}: connect ${r.connectUs.toFixed(1)} µs CPU/stream, heartbeat tick ${(r.tickUs / 1000).toFixed(2)} ms CPU per 10k streams, rss ${(r.rss / 2 ** 20).toFixed(1)} MiB, heap ${(r.heap / 2 ** 20).toFixed(1)} MiB`,
    );
    rounds.push(r);
  }
  const m = (mode: 'on' | 'off', f: (r: Round) => number): number => median(rounds.filter((r) => r.mode === mode).map(f));
  const row = (name: string, f: (r: Round) => number, unit: string, scale = 1): string =>
    `| ${name} | ${(m('on', f) / scale).toFixed(2)} ${unit} | ${(m('off', f) / scale).toFixed(2)} ${unit} | ${(m('on', f) / m('off', f)).toFixed(3)} |`;
  console.log(`\n${N.toLocaleString('en')} streams, heartbeat ${HEARTBEAT_MS} ms, medians of 2 rounds each (order on, off, off, on)\n`);
  console.log('| | deadStreamTimeoutMs 25000 | 0 (off) | on / off |');
  console.log('|---|---|---|---|');
  console.log(row('server CPU per connect', (r) => r.connectUs, 'µs'));
  console.log(row('server CPU per heartbeat tick, per 10k streams', (r) => r.tickUs, 'ms', 1000));
  console.log(row('RSS after GC', (r) => r.rss, 'MiB', 2 ** 20));
  console.log(row('JS heap after GC', (r) => r.heap, 'MiB', 2 ** 20));
  console.log(`\none setUserTimeout call (net-keepalive → ffi-rs → setsockopt): ${(await callCost()).toFixed(1)} µs`);
}

// ---- detection times (root) ------------------------------------------------------------------

/** privateLan wants a test context only for its teardown: collect the cleanups and run them ourselves. */
function context(): { t: ExecutionContext; cleanup: () => void } {
  const fns: (() => void)[] = [];
  const t = { teardown: (fn: () => void) => fns.push(fn) } as unknown as ExecutionContext;
  return { t, cleanup: () => fns.reverse().forEach((fn) => fn()) };
}

function cut(ns: string): void {
  execFileSync('ip', ['-n', ns, 'link', 'set', 'eth0', 'down']);
}

async function streamDetection(): Promise<number[]> {
  const BROWSERS = 5;
  const { t, cleanup } = context();
  try {
    const { hosts } = await privateLan(t, BROWSERS + 1);
    const [serverHost, ...browserHosts] = hosts;
    const server = new NsProcess(t, serverHost!.ns, ['test/fixtures/netns-node.ts'], { HOST: serverHost!.address });
    const { web } = await server.waitFor((m) => m.ready === true, 'the server', 30_000);
    browserHosts.forEach(
      (h, i) =>
        new NsProcess(t, h.ns, ['test/fixtures/stream-client.ts'], {
          URL: `http://${serverHost!.address}:${String(web)}/sse/test/connect?access-token=b${i}`,
        }),
    );
    for (let i = 0; i < BROWSERS; i++) await server.waitFor((m) => m.event === 'connect' && m.userId === `b${i}`, `browser ${i}`, 30_000);
    // Cut one browser every 3 s: together they sample the whole 15 s heartbeat period.
    const cutAt: number[] = [];
    for (let i = 0; i < BROWSERS; i++) {
      cutAt.push(Date.now());
      cut(browserHosts[i]!.ns);
      if (i < BROWSERS - 1) await sleep(3000);
    }
    const out: number[] = [];
    for (let i = 0; i < BROWSERS; i++) {
      const gone = await server.waitFor((m) => m.event === 'disconnect' && m.userId === `b${i}`, `browser ${i} closed`, 120_000);
      out.push((gone.at as number) - cutAt[i]!);
    }
    return out;
  } finally {
    cleanup();
  }
}

async function peerDetection(): Promise<number> {
  const { t, cleanup } = context();
  try {
    const { hosts } = await privateLan(t, 2);
    const [a, b] = hosts as [LanHost, LanHost];
    const node = (h: { ns: string; address: string }, peer: string): NsProcess =>
      new NsProcess(t, h.ns, ['test/fixtures/netns-node.ts'], {
        OPTIONS: JSON.stringify({ cluster: { host: h.address, port: 4101, peers: [`${peer}:4101`] } }),
      });
    const na = node(a, b.address);
    const nb = node(b, a.address);
    const readyB = await nb.waitFor((m) => m.ready === true, 'node B', 30_000);
    await na.waitFor((m) => m.event === 'peer-up' && m.nodeId === readyB.nodeId, 'A to see B', 30_000);
    // Somewhere in the health-check period.
    await sleep(Math.random() * 1000);
    const at = Date.now();
    cut(b.ns);
    const down = await na.waitFor((m) => m.event === 'peer-down', 'A to mark B down', 60_000);
    return (down.at as number) - at;
  } finally {
    cleanup();
  }
}

async function detect(): Promise<void> {
  const why = netnsUnavailable();
  if (why !== undefined) throw new Error(`--detect: ${why}`);
  console.log(
    '\ndetection with the default options (heartbeatMs 15000, deadStreamTimeoutMs 25000; cluster healthIntervalMs 1000, timeoutMs 1000, healthFailures 2)',
  );
  const streams = await streamDetection();
  console.log(`  browser cut without FIN → stream closed: ${streams.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s`);
  const peers: number[] = [];
  for (let i = 0; i < 3; i++) peers.push(await peerDetection());
  console.log(`  cluster node cut without FIN → peer-down: ${peers.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s`);
}

console.log(`dead-stream: ${new Date().toISOString()}`);
await cost();
if (DETECT) await detect();
process.exit(0);
