import type { Server } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { startWorkers, type WorkerContext } from '../lib/index.js';
import { createExampleApp } from './app.js';
import { localhostCertificate } from './certificate.js';

/**
 * Starts the demo: `npm start`. Env: PORT (default 3000), HOST (default 127.0.0.1).
 * Single node, no cluster, durable queues in SQLite; SSE_CLUSTER_SECRET makes it a LAN
 * cluster node, SSE_REDIS_URL a node of a cluster through Redis (`npm run example:redis`). HTTP2=1: HTTPS with HTTP/2 (HTTP/1.1 too), with a self-signed
 * certificate for localhost and 127.0.0.1 made on first run and kept in `<data>/tls/`.
 * SSE_WORKERS=auto (or a number): one worker per core on the same port (startWorkers), each
 * a cluster node of the others; SIGTERM / Ctrl-C to the primary closes them all, SIGHUP
 * restarts them one by one.
 */
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const http2 = process.env.HTTP2 === '1';

/** Builds the demo, listens, and returns how to close it: the whole process, or one worker. */
async function serve(worker?: WorkerContext): Promise<{ close(): Promise<void>; shutdown(signal: string): Promise<void> }> {
  const { app, plugins } = createExampleApp(worker ? { worker } : {});
  app.on('error', (err: unknown) => console.error('[app error]', err));

  const onListening = (): void => {
    const addr = server.address();
    const actual = typeof addr === 'object' && addr ? addr.port : port;
    console.log(`koa-sse-server example listening on ${http2 ? 'https' : 'http'}://${host}:${actual}/`);
    for (const [system, { hub }] of Object.entries(plugins)) {
      const cluster = hub.cluster;
      if (!cluster) continue;
      // The port may be random (SSE_NODE_PORT unset): it is known once the node listens.
      void hub.ready().then(() => {
        const address = cluster.address;
        if (address === undefined) console.log(`cluster node ${cluster.nodeId} (${system}) joined through Redis`);
        else console.log(`cluster node ${cluster.nodeId} (${system}) internal endpoint ${address.host}:${address.port}`);
      });
      hub.on('peer-up', (peer) => console.log(`peer up (${system}): ${peer.nodeId}`));
      hub.on('peer-down', (nodeId) => console.log(`peer down (${system}): ${nodeId}`));
    }
  };

  /** HTTP2 mode: the open HTTP/2 sessions and TLS sockets, ended at shutdown (an HTTP/2 server has no closeAllConnections). */
  const h2Sessions = new Set<ServerHttp2Session>();
  const tlsSockets = new Set<TLSSocket>();

  /** Ends HTTP/2 sessions gracefully (GOAWAY once their last frames are out) and HTTP/1.1 sockets; destroys what is left after 2 s. */
  function closeHttp2Connections(): void {
    for (const session of h2Sessions) session.close();
    for (const socket of tlsSockets) if (socket.alpnProtocol !== 'h2') socket.end();
    setTimeout(() => {
      for (const socket of tlsSockets) socket.destroy();
    }, 2000).unref();
  }

  async function listenHttp2(): Promise<Http2SecureServer> {
    const { key, cert, file, created } = await localhostCertificate(process.env.SSE_DATA_DIR ?? './data');
    console.log(`${created ? 'made a self-signed certificate' : 'self-signed certificate'} for localhost and 127.0.0.1: ${file}`);
    // Koa reports its own errors (app.on('error')): the request promise never rejects.
    const handle = app.callback();
    const secure = createSecureServer({ allowHTTP1: true, key, cert }, (req, res) => void handle(req, res));
    secure.on('session', (session: ServerHttp2Session) => {
      h2Sessions.add(session);
      session.once('close', () => h2Sessions.delete(session));
    });
    secure.on('secureConnection', (socket: TLSSocket) => {
      tlsSockets.add(socket);
      socket.once('close', () => tlsSockets.delete(socket));
    });
    return secure.listen(port, host, onListening);
  }

  const server: Server | Http2SecureServer = http2 ? await listenHttp2() : app.listen(port, host, onListening);

  let stopping = false;
  async function shutdown(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: closing streams (clients are told to reconnect)`);
    // Stop listening first: a restarted process can take the port (and the store file, which
    // close() releases first) while these streams are told goodbye.
    server.close();
    await Promise.all([plugins.hr.close(), plugins.hunter.close()]);
    if ('closeAllConnections' in server) server.closeAllConnections();
    else closeHttp2Connections();
  }
  return { close: () => shutdown(worker ? `worker ${worker.slot}` : 'close'), shutdown };
}

const workers = process.env.SSE_WORKERS;
if (workers) {
  const role = await startWorkers({ workers: workers === 'auto' ? 'auto' : Number(workers), start: (worker) => serve(worker) });
  if (role.role === 'primary') {
    const { pool } = role;
    console.log(`primary ${process.pid}: ${pool.size} workers on one port`);
    pool.on('worker-exit', (w) =>
      console.log(`worker ${w.slot} (pid ${w.pid}) exited (${w.signal ?? `code ${w.code}`})${w.restarting ? ', restarting it' : ''}`),
    );
  }
} else {
  const running = await serve();
  process.on('SIGTERM', () => void running.shutdown('SIGTERM'));
  process.on('SIGINT', () => void running.shutdown('SIGINT'));
}
