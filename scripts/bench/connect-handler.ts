// Connect path, in-process: the time from a stream request's 'request' event to the end of its
// handler's microtasks, for raw node:http, bare Koa (one middleware that opens the stream as
// raw does) and Koa + ssePlugin, each on its own loopback server in this process. Accept,
// parsing and the socket write are not in it (the socket is corked meanwhile): this is the
// JavaScript each one runs per stream. Requests go 100 at a time to one server after the other; round 0
// warms up, round 1 is the measurement. Bounded: 2 rounds of `N` streams per server.
//   npx tsx scripts/bench/connect-handler.ts [N=2000]
import Koa from 'koa';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { ssePlugin } from '../../lib/index.js';
import { openRawHead } from './servers/raw-streams.js';

const N = Number(process.argv[2] ?? 2000);

const bare = new Koa();
bare.use((ctx) => {
  const token = ctx.query['access-token'];
  ctx.respond = false;
  openRawHead(ctx.req, ctx.res, typeof token === 'string' ? token : '');
});
const lib = new Koa();
lib.use(
  ssePlugin('/sse', {
    authenticate: (ctx) => {
      const token = ctx.query['access-token'];
      return typeof token === 'string' ? { id: token } : null;
    },
  }),
);
const handlers: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<unknown>> = {
  'raw node:http': async (req, res) => openRawHead(req, res, new URL(req.url ?? '/', 'http://x').searchParams.get('access-token') ?? ''),
  'bare Koa': bare.callback(),
  'koa-sse-server': lib.callback(),
};
const names = Object.keys(handlers);
const times = new Map<string, number[]>(names.map((n) => [n, []]));
const ports = new Map<string, number>();
for (const name of names) {
  const handle = handlers[name]!;
  const server = createServer((req, res) => {
    // Corked for the measurement: the socket write (writev) leaves after it, for every server
    // alike. Uncorked, Node's own cork is released on the next tick, which runs before the
    // handler's promise settles when the handler wrote synchronously (raw, bare Koa) and after
    // it when the handler wrote after an await: the write was counted for some servers only.
    const socket = req.socket;
    socket.cork();
    const t0 = process.hrtime.bigint();
    void handle(req, res).then(() => {
      times.get(name)!.push(Number(process.hrtime.bigint() - t0) / 1000);
      socket.uncork();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  ports.set(name, (server.address() as { port: number }).port);
}

const sockets: Socket[] = [];
function open(port: number, user: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () =>
      socket.write(`GET /sse/connect?access-token=${user} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`),
    );
    socket.once('data', () => resolve());
    socket.once('error', reject);
    sockets.push(socket);
  });
}

for (let round = 0; round < 2; round++) {
  for (const list of times.values()) list.length = 0;
  for (let i = 0; i < N; i += 100) {
    for (const name of names) await Promise.all(Array.from({ length: Math.min(100, N - i) }, (_, j) => open(ports.get(name)!, `u${round}-${i + j}`)));
  }
  if (round === 1) {
    console.log(`| server | p25 µs | p50 µs | mean p10–p90 µs |\n|---|---:|---:|---:|`);
    for (const name of names) {
      const a = times.get(name)!.sort((x, y) => x - y);
      const mid = a.slice(Math.floor(a.length / 10), Math.ceil((a.length * 9) / 10));
      const mean = mid.reduce((s, x) => s + x, 0) / mid.length;
      console.log(`| ${name} | ${a[a.length >> 2]!.toFixed(1)} | ${a[a.length >> 1]!.toFixed(1)} | ${mean.toFixed(1)} |`);
    }
  }
  for (const socket of sockets) socket.destroy();
  sockets.length = 0;
  await new Promise((resolve) => setTimeout(resolve, 500));
}
process.exit(0);
