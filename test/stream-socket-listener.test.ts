// Keepalive and TCP_USER_TIMEOUT set once on the listening socket (Linux copies them to every
// connection it accepts) instead of once per stream: streams accepted after the grace period
// have them without a setsockopt of their own.
import test, { type ExecutionContext } from 'ava';
import Koa from 'koa';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { Socket, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ssePlugin } from '../lib/index.js';
import { LISTENER_GRACE_MS } from '../lib/local/stream-socket.js';
import { tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const keepalive = createRequire(import.meta.url)('net-keepalive') as { getUserTimeout(socket: Socket): number };
const linux = process.platform === 'linux' ? test : test.skip;

/** The option on the listening socket itself (net-keepalive takes sockets: one around its handle). */
function listenerTimeout(server: Server): number {
  const asSocket = Object.create(Socket.prototype) as Socket & { _handle: unknown };
  asSocket._handle = (server as Server & { _handle: unknown })._handle;
  return keepalive.getUserTimeout(asSocket);
}

/**
 * Whether the kernel runs a keepalive timer on the server's side of the connection from `clientPort`
 * (`ss -o`: `timer:(keepalive,…)` on an established socket with SO_KEEPALIVE and nothing unacknowledged).
 */
function hasKeepalive(serverPort: number, clientPort: number): boolean {
  const out = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${serverPort} and dport = :${clientPort} )`], { encoding: 'utf8' });
  if (out.trim() === '') throw new Error(`no socket ${serverPort} -> ${clientPort} in ss`);
  return /timer:\(keepalive,/.test(out);
}

/** A plugin on loopback that records the socket of every request it gets. */
async function recordingServer(
  t: ExecutionContext,
  deadStreamTimeoutMs: number,
): Promise<{ server: Server; port: number; base: string; sockets: Socket[] }> {
  const app = new Koa();
  const sockets: Socket[] = [];
  app.use(async (ctx, next) => {
    sockets.push(ctx.req.socket);
    await next();
  });
  const plugin = ssePlugin('/sse', { authenticate: tokenUser, deadStreamTimeoutMs });
  app.use(plugin);
  const server = app.listen(0, '127.0.0.1');
  t.teardown(async () => {
    await plugin.close();
    server.closeAllConnections();
    server.close();
  });
  await new Promise((resolve) => server.once('listening', resolve));
  const port = (server.address() as { port: number }).port;
  return { server, port, base: `http://127.0.0.1:${port}/sse`, sockets };
}

/** Until the kernel shows a keepalive timer (it does once nothing is unacknowledged), at most 3 s. */
async function keepaliveShown(serverPort: number, clientPort: number): Promise<boolean> {
  for (let i = 0; i < 60; i++) {
    if (hasKeepalive(serverPort, clientPort)) return true;
    await sleep(50);
  }
  return false;
}

linux('deadStreamTimeoutMs goes on the listener once; streams accepted later inherit it', async (t) => {
  const { server, base, sockets } = await recordingServer(t, 12_345);
  t.is(listenerTimeout(server), 0, 'nothing set before the first stream');

  await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is(listenerTimeout(server), 12_345);
  t.is(keepalive.getUserTimeout(sockets[0]!), 12_345);

  // Past the grace period a stream is not given the option itself: it has it from the listener.
  await sleep(LISTENER_GRACE_MS + 200);
  await RawStream.open(t, `${base}/connect?access-token=2`);
  t.is(keepalive.getUserTimeout(sockets[1]!), 12_345);
});

linux('TCP keepalive goes on the listener once; streams accepted later have it, with or without a user timeout', async (t) => {
  for (const deadStreamTimeoutMs of [0, 20_000]) {
    const { port, base, sockets } = await recordingServer(t, deadStreamTimeoutMs);
    await RawStream.open(t, `${base}/connect?access-token=1`);
    await sleep(LISTENER_GRACE_MS + 200);
    await RawStream.open(t, `${base}/connect?access-token=2`);
    for (const socket of sockets) {
      t.true(await keepaliveShown(port, socket.remotePort!), `deadStreamTimeoutMs ${deadStreamTimeoutMs}: keepalive on ${socket.remotePort}`);
    }
    t.is(keepalive.getUserTimeout(sockets[1]!), deadStreamTimeoutMs);
  }
});
