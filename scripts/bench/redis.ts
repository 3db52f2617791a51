// Redis benchmark (`npm run bench:redis`): one redis-server of its own (loopback, free port,
// AOF everysec), then, on that same Redis, one after the other:
//   koa-sse-server's Redis engine (`cluster: { redis }`, `qos: { redis }`), three node processes,
//   Socket.IO 4 + @socket.io/redis-adapter 8, three node processes;
// and for each:
//   1. cross-node latency: a client on node B, node A sends to it at 1,000 sends/s; p50 / p99
//      from the send timestamp to the receipt (one monotonic clock for every process);
//   2. broadcast: N clients spread over the three nodes, a burst of K broadcasts from node A;
//      deliveries/s from the first send to the last receipt;
//   3. (koa-sse-server only: Socket.IO has no durable delivery) durable sends/s committed to
//      Redis, from one node and from three at once.
// Both are read by minimal clients in this process: SSE streams on raw TCP, Socket.IO over
// WebSocket (Engine.IO handshake by hand), each with a byte scanner for the send stamp. Loopback only; bounded (a hard time limit);
// stops by itself.  npx tsx scripts/bench/redis.ts [--quick] [--latency-abba]
// --latency-abba: only the latency rows, interleaved (see latencyAbba); --rounds sse,socketio,...
// sets its rounds (default sse,socketio,socketio,sse; sse@<commit>: that commit's library;
// sse+nowindow: the recovery window off, BENCH_RECOVERY=off for that round's nodes);
// --sends both|free|counted: which sends of ours (default both).
import { cpus } from 'node:os';
import { WebSocket } from 'ws';
import { INSTALL_HINT, redisCpuSeconds, redisServerInstalled, startRedisServer, type RedisProcess } from '../redis-process.js';
import { checkout, removeCheckout } from './checkout.js';
import type { Rpc } from './ipc.js';
import { flag, opt } from './cli.js';
import { spawn, stop, stopAfter } from './procs.js';
import { forEachStamp, StampedSseClients } from './stamped-sse-clients.js';
import { Histogram, nowUs } from './stats.js';

const quick = flag('quick');
const RATE = 1000;
const SECONDS = quick ? 3 : 10;
const CLIENTS = quick ? 300 : 900;
const BROADCASTS = quick ? 50 : 200;
const DURABLE = quick ? 10_000 : 50_000;
const DURABLE_IN_FLIGHT = 1000;
const TIME_LIMIT_MS = (quick ? 3 : 8) * 60_000;

type Kind = 'sse' | 'socketio';
const NAMES: Record<Kind, string> = { sse: 'koa-sse-server (Redis engine)', socketio: 'Socket.IO + redis-adapter' };

/** A set of clients of one kind: every receipt of a stamped event is counted and timed. */
interface Clients {
  readonly hist: Histogram;
  received: number;
  lastAt: number;
  open(port: number, user: string): Promise<void>;
  close(): void;
}

/**
 * Socket.IO clients as a minimal reader too (the `ws` package socket.io itself uses, the
 * Engine.IO v4 handshake by hand, a byte scanner for `"t":`), so that neither side is
 * limited by its client's parsing: socket.io-client decodes every packet into objects.
 */
class IoClients implements Clients {
  readonly hist = new Histogram();
  received = 0;
  lastAt = 0;
  readonly #sockets: WebSocket[] = [];

  async open(port: number, user: string): Promise<void> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&u=${user}`);
    this.#sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (data: Buffer) => {
        const now = nowUs();
        const s = data.toString('latin1');
        if (s.startsWith('42')) {
          forEachStamp(s, (t) => {
            this.received++;
            this.lastAt = now;
            this.hist.record(now - t);
          });
        } else if (s.startsWith('0{'))
          ws.send('40'); // Engine.IO open: connect to the main namespace
        else if (s === '2')
          ws.send('3'); // ping, pong
        else if (s.startsWith('40')) resolve(); // Socket.IO connect: in its room from now on
      });
    });
  }

  close(): void {
    for (const s of this.#sockets) s.terminate();
  }
}

const clientsOf = (kind: Kind): Clients => (kind === 'sse' ? new StampedSseClients() : new IoClients());

async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Node {
  rpc: Rpc;
  web: number;
}

async function startNodes(kind: Kind, redis: RedisProcess, libDir?: string, noWindow = false): Promise<Node[]> {
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_KIND: kind, BENCH_REDIS_URL: redis.url };
  if (libDir !== undefined) env.BENCH_LIB_DIR = libDir;
  if (noWindow) env.BENCH_RECOVERY = 'off';
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      // BENCH_REDIS_PROF=<dir>: a --cpu-prof profile of the sending node (node 1) into <dir>;
      // BENCH_REDIS_PROF_NODES=1,2: of these nodes (2: the receiving one).
      const prof = process.env.BENCH_REDIS_PROF;
      const profiled = (process.env.BENCH_REDIS_PROF_NODES ?? '1').split(',').map(Number);
      const execArgv = prof !== undefined && profiled.includes(i + 1) ? ['--cpu-prof', '--cpu-prof-interval', '250', `--cpu-prof-dir=${prof}`] : [];
      const { rpc, ready } = await spawn('redis-node.ts', [], execArgv, `${kind} node${i + 1}`, env);
      nodes.push({ rpc, web: (ready as { web: number }).web });
    }
    for (const n of nodes)
      await until(`${kind}: every node sees two peers`, 20_000, async () => (await n.rpc.call<number>('peers').catch(() => -1)) === 2);
  } catch (err) {
    await stopNodes(nodes);
    throw err;
  }
  return nodes;
}

async function stopNodes(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => stop(n.rpc)));
}

async function latency(
  kind: Kind,
  nodes: Node[],
  count = true,
): Promise<{ p50: number; p99: number; sent: number; received: number; senderCpu: number }> {
  const clients = clientsOf(kind);
  await clients.open(nodes[1]!.web, 'target');
  // Until one send arrives, node B may not be subscribed yet: not what is measured.
  let seq = 0;
  await until(`${kind}: a first send crosses`, 10_000, async () => {
    await nodes[0]!.rpc.call('send', { user: 'target', seq: seq++ });
    await new Promise((r) => setTimeout(r, 50));
    return clients.received > 0;
  });
  await new Promise((r) => setTimeout(r, 200));
  clients.hist.reset();
  clients.received = 0;
  const t0 = nowUs();
  const { sent, cpuMs } = await nodes[0]!.rpc.call<{ sent: number; cpuMs: number }>(
    'pace',
    { user: 'target', rate: RATE, total: RATE * SECONDS, count },
    (SECONDS + 30) * 1000,
  );
  await until(`${kind}: paced sends received`, 5000, () => clients.received >= sent).catch(() => undefined);
  clients.close();
  const senderCpu = (cpuMs * 1000) / (nowUs() - t0);
  return { p50: clients.hist.percentile(50) / 1000, p99: clients.hist.percentile(99) / 1000, sent, received: clients.received, senderCpu };
}

async function broadcast(kind: Kind, nodes: Node[]): Promise<{ perSecond: number; received: number; expected: number; clientCpu: number }> {
  const clients = clientsOf(kind);
  for (let i = 0; i < CLIENTS; i++) await clients.open(nodes[i % nodes.length]!.web, `u${i}`);
  // One broadcast that reaches everyone first: every node subscribed, every client in place.
  await nodes[0]!.rpc.call('burst', { count: 1 });
  await until(`${kind}: a first broadcast reaches all`, 20_000, () => clients.received >= CLIENTS);
  await new Promise((r) => setTimeout(r, 200));
  clients.received = 0;
  const expected = CLIENTS * BROADCASTS;
  const started = nowUs();
  const cpu = process.cpuUsage();
  await nodes[0]!.rpc.call('burst', { count: BROADCASTS }, 120_000);
  await until(`${kind}: broadcasts received`, 60_000, () => clients.received >= expected).catch(() => undefined);
  const seconds = (clients.lastAt - started) / 1e6;
  const used = process.cpuUsage(cpu);
  clients.close();
  // The clients' share of one core: near 1, they and not the servers set the rate.
  return { perSecond: clients.received / seconds, received: clients.received, expected, clientCpu: (used.user + used.system) / 1e6 / seconds };
}

async function durable(nodes: Node[], redis: RedisProcess): Promise<{ one: number; three: number; redisOne: number; redisThree: number }> {
  const args = { count: DURABLE, users: 1000, inFlight: DURABLE_IN_FLIGHT };
  let cpu = redisCpuSeconds(redis);
  let started = performance.now();
  const one = await nodes[0]!.rpc.call<{ sent: number; seconds: number }>('durable', args, 300_000);
  const redisOne = (redisCpuSeconds(redis) - cpu) / ((performance.now() - started) / 1000);
  cpu = redisCpuSeconds(redis);
  started = performance.now();
  const all = await Promise.all(nodes.map((n) => n.rpc.call<{ sent: number; seconds: number }>('durable', args, 300_000)));
  const seconds = (performance.now() - started) / 1000;
  const redisThree = (redisCpuSeconds(redis) - cpu) / seconds;
  return { one: one.sent / one.seconds, three: all.reduce((a, r) => a + r.sent, 0) / seconds, redisOne, redisThree };
}

interface Result {
  lat?: Awaited<ReturnType<typeof latency>>;
  /** koa-sse-server's latency with count-free sends (`{ count: false }`). */
  latFree?: Awaited<ReturnType<typeof latency>>;
  bc?: Awaited<ReturnType<typeof broadcast>>;
  dur?: Awaited<ReturnType<typeof durable>>;
  error?: string;
}

async function run(kind: Kind, redis: RedisProcess): Promise<Result> {
  let nodes: Node[];
  try {
    nodes = await startNodes(kind, redis);
  } catch (err) {
    return { error: `could not start: ${String((err as Error).message).split('\n')[0]}` };
  }
  const result: Result = {};
  try {
    result.lat = await latency(kind, nodes);
    if (kind === 'sse') result.latFree = await latency(kind, nodes, false);
    result.bc = await broadcast(kind, nodes);
    if (kind === 'sse') result.dur = await durable(nodes, redis);
  } catch (err) {
    result.error = String((err as Error).message).split('\n')[0];
  } finally {
    await stopNodes(nodes);
  }
  return result;
}

/**
 * `--latency-abba`: the latency rows only, interleaved on the shared machine: koa-sse-server,
 * Socket.IO, Socket.IO, koa-sse-server, each on fresh nodes; on koa-sse-server both the
 * counted send and the count-free one (`{ count: false }`), in turn.
 */
async function latencyAbba(redis: RedisProcess): Promise<void> {
  const rows: string[] = [];
  // sse@<commit>: that commit's build of the library, beside the working tree's.
  const specs = opt('rounds')?.split(',') ?? ['sse', 'socketio', 'socketio', 'sse'];
  const sends = opt('sends') ?? 'both';
  if (specs.some((k) => !/^(sse(@[^+]+)?(\+nowindow)?|socketio)$/.test(k))) {
    throw new Error('--rounds: sse, sse@<commit>, either with +nowindow, or socketio, comma-separated');
  }
  if (!['both', 'free', 'counted'].includes(sends)) throw new Error('--sends: both, free or counted');
  const builds = new Map<string, string>();
  try {
    for (const [round, spec] of specs.entries()) {
      const noWindow = spec.endsWith('+nowindow');
      const [kind, commit] = spec.replace(/\+nowindow$/, '').split('@') as [Kind, string | undefined];
      if (commit !== undefined && !builds.has(commit)) builds.set(commit, checkout(commit));
      const name = (commit === undefined ? NAMES[kind] : `${NAMES[kind]} at ${commit}`) + (noWindow ? ', recovery window off' : '');
      console.error(`bench:redis: latency round ${round + 1}, ${name}…`);
      const nodes = await startNodes(kind, redis, commit === undefined ? undefined : `${builds.get(commit)!}/lib`, noWindow);
      try {
        const line = (label: string, l: Awaited<ReturnType<typeof latency>>): string =>
          `| ${round + 1} | ${label} | ${l.p50.toFixed(2)} ms | ${l.p99.toFixed(2)} ms | ${l.received}/${l.sent} | ${Math.round(l.senderCpu * 100)}% |`;
        if (kind === 'socketio') rows.push(line(name, await latency(kind, nodes)));
        else {
          // Alternate which goes first, so that neither always meets a warmer process.
          const both = round % 2 === 0 ? [false, true] : [true, false];
          for (const count of sends === 'both' ? both : [sends === 'counted']) {
            rows.push(line(`${name}, ${count ? 'counted send' : 'count-free send'}`, await latency(kind, nodes, count)));
          }
        }
      } finally {
        await stopNodes(nodes);
      }
    }
  } finally {
    for (const dir of builds.values()) removeCheckout(dir);
  }
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
  console.log(`# Redis latency, ABBA, ${new Date().toISOString()}, ${machine}; ${RATE} sends/s for ${SECONDS} s, A -> client on B`);
  console.log('| round | sender | p50 | p99 | received | sender node CPU (of a core) |');
  console.log('|---|---|---|---|---|---:|');
  for (const row of rows) console.log(row);
}

if (!redisServerInstalled()) {
  console.error(`redis-server is not installed. On Debian or Ubuntu:\n  ${INSTALL_HINT}`);
  process.exit(1);
}
stopAfter(TIME_LIMIT_MS, `bench:redis: time limit (${TIME_LIMIT_MS / 60_000} min) reached, stopping`);

const redis = await startRedisServer({ aof: true });
if (flag('latency-abba')) {
  try {
    await latencyAbba(redis);
  } finally {
    await redis.stop();
  }
  process.exit(0);
}
const results = {} as Record<Kind, Result>;
try {
  for (const kind of ['sse', 'socketio'] as const) {
    console.error(`bench:redis: ${NAMES[kind]}…`);
    results[kind] = await run(kind, redis);
  }
} finally {
  await redis.stop();
}

const ms = (v: number | undefined): string => (v === undefined ? '—' : `${v.toFixed(2)} ms`);
const int = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '—' : Math.round(v).toLocaleString('en'));
const share = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '' : `, redis-server ${Math.round(v * 100)}% of a core`);
const { sse, socketio } = results;
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
console.log(`# Redis benchmark, ${new Date().toISOString()}, ${machine}${quick ? ' (quick)' : ''}; one redis-server, AOF everysec`);
for (const kind of ['sse', 'socketio'] as const) if (results[kind].error) console.log(`# ${NAMES[kind]}: ${results[kind].error}`);
const bcRatio = sse.bc && socketio.bc ? ` (${(sse.bc.perSecond / socketio.bc.perSecond).toFixed(2)}x)` : '';
const got = (l: Result['lat']): string => (l ? ` (${l.received}/${l.sent})` : '');
const gotBc = (b: Result['bc']): string =>
  b === undefined
    ? ''
    : `${b.received < b.expected ? ` (incomplete: ${b.received}/${b.expected})` : ''}, clients ${Math.round(b.clientCpu * 100)}% of a core`;
console.log(`| measure | ${NAMES.sse} | ${NAMES.socketio} | target |`);
console.log('|---|---|---|---|');
console.log(`| cross-node latency at ${RATE}/s for ${SECONDS} s (A -> client on B), p50 | ${ms(sse.lat?.p50)} | ${ms(socketio.lat?.p50)} | — |`);
console.log(`| same, p99 | ${ms(sse.lat?.p99)}${got(sse.lat)} | ${ms(socketio.lat?.p99)}${got(socketio.lat)} | < 5 ms |`);
console.log(
  `| same with count-free sends (\`{ count: false }\`), p50 / p99 | ${ms(sse.latFree?.p50)} / ${ms(sse.latFree?.p99)}${got(sse.latFree)} | (Socket.IO's emit counts nothing) | p99 <= Socket.IO |`,
);
console.log(
  `| broadcast, ${CLIENTS} clients over 3 nodes, ${BROADCASTS} from node A, deliveries/s | ${int(sse.bc?.perSecond)}${bcRatio}${gotBc(sse.bc)} | ${int(socketio.bc?.perSecond)}${gotBc(socketio.bc)} | >= 2x Socket.IO |`,
);
console.log(
  `| durable sends/s committed to Redis, one node (${int(DURABLE)} sends, ${DURABLE_IN_FLIGHT} in flight) | ${int(sse.dur?.one)}${share(sse.dur?.redisOne)} | (none) | >= 20,000 |`,
);
console.log(`| durable sends/s, three nodes at once (${int(DURABLE)} each) | ${int(sse.dur?.three)}${share(sse.dur?.redisThree)} | (none) | — |`);
process.exit(sse.error || socketio.error ? 1 : 0);
