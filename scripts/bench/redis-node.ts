// One node of the Redis benchmark (forked by scripts/bench/redis.ts). env BENCH_KIND:
//   sse       koa-sse-server, `cluster: { redis }` and `qos: { redis }` (the Redis engine);
//   socketio  socket.io 4 with @socket.io/redis-adapter 8 over ioredis, a room per user.
// env BENCH_REDIS_URL: the benchmark's own redis-server. Listens on a random loopback port.
import Koa from 'koa';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as IoServer } from 'socket.io';
import { pathToFileURL } from 'node:url';
import { serveIpc, type Handler } from './ipc.js';
import { nowUs, payload } from './stats.js';

// BENCH_LIB_DIR: the library from that lib/ folder (another commit's build, redis.ts --rounds sse@<commit>).
const { ssePlugin } = (await import(
  process.env.BENCH_LIB_DIR === undefined ? '../../lib/index.js' : pathToFileURL(`${process.env.BENCH_LIB_DIR}/index.ts`).href
)) as typeof import('../../lib/index.js');

const kind = process.env.BENCH_KIND;
const redis = process.env.BENCH_REDIS_URL!;

/**
 * Sends `total` messages at `rate` per second, each stamped with its send time; answers the
 * sender's CPU time meanwhile (ms).
 */
async function pace(rate: number, total: number, send: (seq: number) => Promise<unknown> | void): Promise<{ sent: number; cpuMs: number }> {
  const start = nowUs();
  const cpu0 = process.cpuUsage();
  const inFlight: Promise<unknown>[] = [];
  let sent = 0;
  while (sent < total) {
    const wait = start + (sent * 1e6) / rate - nowUs();
    // Waits on a timer, never by spinning through event-loop turns: a spinning sender took a
    // whole core from redis-server and the receiving node on this 2-core machine, and it spun
    // the longer the sooner its send resolved (a count-free send, Socket.IO's emit), which
    // put those rows behind the counted send's. A timer fires up to ~1 ms late; the sends keep
    // the rate (drift-corrected) and each is stamped when it goes, so latency is unaffected.
    // Each send in a turn of its own: a send that resolves at once must not keep the loop
    // from flushing what the previous one queued.
    if (wait > 0) await new Promise((r) => setTimeout(r, wait / 1000));
    else await new Promise((r) => setImmediate(r));
    // Open loop: the next send does not wait for this one's answer (a counted send's peers'
    // counts). Waiting made the counted row a closed loop: while the receiving node stalled,
    // the next send was held back and stamped only once it went, so the stall never showed in
    // its latencies (coordinated omission), while count-free sends and Socket.IO's emits,
    // stamped on schedule, queued behind it and counted it.
    const p = send(sent);
    if (p !== undefined) inFlight.push(p);
    sent++;
  }
  await Promise.all(inFlight);
  const cpu = process.cpuUsage(cpu0);
  return { sent, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function sseNode(): Promise<{ web: number; handlers: Record<string, Handler> }> {
  const app = new Koa();
  const plugin = ssePlugin('/sse', {
    name: 'bench',
    authenticate: (ctx) => ({ id: String(ctx.query.u) }),
    // The Redis engine's options: a URL is all a node needs (no secret, no peer list).
    cluster: { redis },
    qos: { redis },
    // BENCH_RECOVERY=off: the recovery window off (no XADD of each ordinary send to the shared Stream).
    ...(process.env.BENCH_RECOVERY === 'off' ? { recovery: false as const } : {}),
  });
  app.use(plugin);
  const server = app.listen(0, '127.0.0.1');
  const hub = plugin.hub;
  await Promise.all([hub.ready(), once(server, 'listening')]);
  return {
    web: (server.address() as AddressInfo).port,
    handlers: {
      peers: () => hub.cluster!.peers().length,
      send: ({ user, seq }) => hub.sendByUserId(String(user), 'bench', payload(Number(seq))),
      // count: false: count-free sends (resolve at once, the peers answer nothing).
      pace: ({ user, rate, total, count }) =>
        pace(Number(rate), Number(total), (seq) => hub.sendByUserId(String(user), 'bench', payload(seq), { count: count !== false })),
      burst: async ({ count }) => {
        const sends: Promise<number>[] = [];
        for (let i = 0; i < Number(count); i++) sends.push(hub.sendAll('bench', payload(i)));
        return (await Promise.all(sends)).reduce((a, b) => a + b, 0);
      },
      /** `count` durable sends to `users` distinct users, `inFlight` unresolved at most: committed sends per second. */
      durable: async ({ count, users, inFlight }) => {
        const total = Number(count);
        let next = 0;
        const started = performance.now();
        const worker = async (): Promise<void> => {
          while (next < total) {
            const i = next++;
            await hub.qos.sendByUserId(`d${i % Number(users)}`, 'bell', { i });
          }
        };
        await Promise.all(Array.from({ length: Number(inFlight) }, worker));
        return { sent: total, seconds: (performance.now() - started) / 1000 };
      },
      stop: async () => {
        await plugin.close();
        server.closeAllConnections();
        server.close();
        // Reply first, then exit (so that --cpu-prof writes its profile).
        setTimeout(() => process.exit(0), 50);
        return true;
      },
    },
  };
}

async function socketIoNode(): Promise<{ web: number; handlers: Record<string, Handler> }> {
  const pub = new Redis(redis);
  const sub = pub.duplicate();
  const server = http.createServer();
  const io = new IoServer(server, { transports: ['websocket'], adapter: createAdapter(pub, sub) });
  io.on('connection', (socket) => void socket.join(`user:${String(socket.handshake.query.u)}`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    web: (server.address() as AddressInfo).port,
    handlers: {
      // Nodes subscribed to the adapter's channel: this one and its peers.
      peers: async () => (await io.of('/').adapter.serverCount()) - 1,
      send: ({ user, seq }) => void io.to(`user:${String(user)}`).emit('bench', payload(Number(seq))),
      pace: ({ user, rate, total }) => pace(Number(rate), Number(total), (seq) => void io.to(`user:${String(user)}`).emit('bench', payload(seq))),
      burst: ({ count }) => {
        for (let i = 0; i < Number(count); i++) io.emit('bench', payload(i));
        return 0;
      },
      stop: async () => {
        io.disconnectSockets(true);
        await new Promise<void>((resolve) => void io.close(() => resolve()));
        pub.disconnect();
        sub.disconnect();
        setTimeout(() => process.exit(0), 50);
        return true;
      },
    },
  };
}

const { web, handlers } = kind === 'sse' ? await sseNode() : kind === 'socketio' ? await socketIoNode() : (process.exit(2) as never);
serveIpc({ ...handlers, address: () => ({ web }) });
process.send?.({ ready: { web } });
