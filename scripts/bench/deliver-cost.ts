// What the library's write path costs per delivery beyond the hand-tuned socket write, with
// everything else equal: one process, one kernel, the same bytes. For each build of lib/ (the
// working tree, a commit, or a folder: a bench-only build with a feature switched off) a
// LocalNode holds `n` streams; the raw way holds `n` streams of its own and writes each
// broadcast as the hand-tuned server does (scripts/bench/servers/raw-socket.ts: one chunk per
// event, socket.write corked for the tick). Every round broadcasts `batch` events (the same
// frame, with a recovery-window id, for everyone) in one turn and flushes them; the process's
// user and system CPU time of that synchronous part is the round's cost. The load clients
// are sockets of this process that read only between rounds. Rounds alternate between the
// ways, each first in turn. Loopback only; bounded; stops by itself.
//
//   npx tsx scripts/bench/deliver-cost.ts [--builds lib,lib@<commit>,lib@/abs/lib] [--n 3000] [--rounds 200] [--ceiling]
//
// --ceiling adds a reference way: a tick's broadcasts joined into one Buffer once, written to
// each socket with one socket.write (no cork): what a write path that queued frames itself could reach.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { isAbsolute, join } from 'node:path';
import { abbaOrder, perRound } from './abba.js';
import { flag, opt } from './cli.js';
import { checkout, removeCheckout } from './checkout.js';
import { loadAverage } from './cpu-time.js';
import { root, stopAfter } from './procs.js';
import { chunkOf, corkedWrite } from './servers/socket-write.js';
import { median } from './stats.js';
import type { LocalNode } from '../../lib/local/local-node.js';

const builds = opt('builds', 'lib').split(',');
const N = Number(opt('n', '3000'));
const ROUNDS = Number(opt('rounds', '200'));
const BATCH = 10;
if (!(N > 0 && N * 2 * (builds.length + 1) < 19_000)) throw new Error('--n too large for the file limit (20,000 per process)');
if (!(ROUNDS > 0 && ROUNDS <= 2000)) throw new Error('--rounds must be 1..2000');
stopAfter(10 * 60_000, 'deliver-cost: time limit reached, stopping');

interface Way {
  label: string;
  broadcast(frame: Buffer): void;
  dir?: string;
}

// ---- the hand-tuned way (servers/socket-write.ts, the raw-socket server's) -----------------
const rawSockets: Socket[] = [];
const raw: Way = {
  label: 'raw socket.write',
  broadcast: (frame) => {
    const buf = chunkOf(frame);
    for (const s of rawSockets) corkedWrite(s, buf);
  },
};

// ---- the ceiling: a tick's broadcasts joined once, one socket.write per socket per tick ----
// (what a write path that queued its own frames per tick instead of corking could reach)
let tickFrames: Buffer[] = [];
const joined: Way = {
  label: 'raw, one write per socket per tick',
  broadcast: (frame) => {
    if (tickFrames.length === 0) {
      process.nextTick(() => {
        const buf = Buffer.concat(tickFrames);
        tickFrames = [];
        for (const s of rawSockets) s.write(buf);
      });
    }
    tickFrames.push(chunkOf(frame));
  },
};

// ---- the library's ways -------------------------------------------------------------------
const nodes: LocalNode[] = [];
async function libWay(spec: string): Promise<Way> {
  const build = spec.split('@')[1];
  const dir = build === undefined ? undefined : isAbsolute(build) ? undefined : checkout(build);
  const lib = build === undefined ? join(root, 'lib') : isAbsolute(build) ? build : `${dir}/lib`;
  const { LocalNode } = (await import(pathToFileURL(`${lib}/local/local-node.ts`).href)) as typeof import('../../lib/local/local-node.js');
  const { resolveHubOptions } = (await import(pathToFileURL(`${lib}/hub-options.ts`).href)) as typeof import('../../lib/hub-options.js');
  const node = new LocalNode(resolveHubOptions({ maxConnectionsPerUser: 1e9, clientIdMaxConnections: 1e9 }, '0.0.0'));
  nodes.push(node);
  return { label: spec, dir, broadcast: (frame) => void node.deliver('all', [''], frame, 'tick', false) };
}

const ways: Way[] = [raw];
if (flag('ceiling')) ways.push(joined);
for (const b of builds) ways.push(await libWay(b));

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const way = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('w'));
  if (way === 0 || ways[way] === joined) {
    req.socket.setNoDelay(true);
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('event: connect-finish\ndata: {}\n\n');
    rawSockets.push(req.socket);
    return;
  }
  nodes[way - ways.length + nodes.length]!.open({
    req,
    res,
    user: { id: `u${rawSockets.length}` },
    client: { listeners: [], ack: false, attributes: {} },
    request: { ip: '127.0.0.1', domain: 'x', userAgent: 'bench' },
  });
});
server.listen(0, '127.0.0.1', 4096);
await new Promise((r) => server.once('listening', r));
const port = (server.address() as AddressInfo).port;

// ---- clients: this process's sockets, read between rounds --------------------------------
let pending = 0;
const readBuffer = Buffer.allocUnsafe(64 * 1024);
let bytesRead = 0;
function open(way: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let head = true;
    const sock = tcpConnect({
      host: '127.0.0.1',
      port,
      onread: {
        buffer: readBuffer,
        callback: (n: number) => {
          bytesRead += n;
          if (head) {
            head = false;
            resolve();
          }
          return true;
        },
      },
    });
    sock.on('connect', () => sock.write(`GET /sse/connect?w=${way} HTTP/1.1\r\nHost: x\r\n\r\n`));
    sock.on('error', reject);
  });
}
for (let w = 0; w < ways.length; w++) {
  if (ways[w] === joined) continue; // writes to the raw way's sockets
  for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => open(w)));
}
for (const node of nodes) if (node.size !== N) throw new Error(`a node holds ${node.size} streams, not ${N}`);

// The frame every way writes: an ordinary send with a recovery-window id, as sendAll makes it.
const frame = Buffer.from(
  `event: tick\nid: mi2f0k3a7b.mi2f0k3a.0.a1b2c3\ndata: ${JSON.stringify({ t: 1733465000000000, seq: 1, type: 'bench-event', body: 'x'.repeat(40) })}\n\n`,
);

/** One round: `BATCH` broadcasts in one turn, flushed; the CPU time of that part, per delivery (ns). */
async function round(way: Way): Promise<{ user: number; sys: number }> {
  const before = bytesRead;
  const c0 = process.cpuUsage();
  for (let i = 0; i < BATCH; i++) way.broadcast(frame);
  // The corked sockets are uncorked in a nextTick queued by the first write: this one runs after it.
  await new Promise((r) => process.nextTick(r));
  const c1 = process.cpuUsage(c0);
  // Let the clients read it all before the next round (not measured).
  const want = before + BATCH * N * (frame.length + 6);
  for (let i = 0; i < 2000 && bytesRead < want; i++) await new Promise((r) => setImmediate(r));
  pending = want - bytesRead;
  return { user: (c1.user * 1000) / (BATCH * N), sys: (c1.system * 1000) / (BATCH * N) };
}

const samples = ways.map(() => [] as { user: number; sys: number }[]);
for (let w = 0; w < ways.length; w++) for (let i = 0; i < 20; i++) await round(ways[w]!); // warm-up
for (let r = 1; r <= ROUNDS; r++) {
  for (const w of abbaOrder(ways.length, r)) samples[w]!.push(await round(ways[w]!));
}
if (pending > 0) console.error(`(clients still ${pending} bytes behind at the end)`);
const load = loadAverage();
console.log(`Node ${process.version}; ${N} streams per way, ${BATCH} broadcasts per round, ${ROUNDS} rounds alternating; load average ${load}.`);
console.log('ns of CPU per delivery, medians over rounds (the synchronous broadcast + flush); × raw = median of per-round ratios.\n');
console.log('| way | user ns | system ns | total ns | × raw (total) | total − raw (ns) |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [w, way] of ways.entries()) {
  const xs = samples[w]!;
  const tot = xs.map((x) => x.user + x.sys);
  const ratio = perRound(xs, samples[0]!, (x) => x.user + x.sys);
  const diff = tot.map((t, i) => t - (samples[0]![i]!.user + samples[0]![i]!.sys));
  console.log(
    `| ${way.label} | ${median(xs.map((x) => x.user)).toFixed(0)} | ${median(xs.map((x) => x.sys)).toFixed(0)} | ${median(tot).toFixed(0)} | ${median(ratio).toFixed(3)}× | ${median(diff).toFixed(0)} |`,
  );
}
for (const way of ways) if (way.dir !== undefined) removeCheckout(way.dir);
process.exit(0);
