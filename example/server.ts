import type { Server } from 'node:http';
import { createExampleApp } from './app.js';

/**
 * Starts the demo: `npm start`. Env: PORT (default 3000), HOST (default 127.0.0.1).
 * Single node, no cluster.
 */
const { app, plugins } = createExampleApp();
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';

app.on('error', (err: unknown) => console.error('[app error]', err));

const server: Server = app.listen(port, host, () => {
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  console.log(`koa-sse-server example listening on http://${host}:${actual}/`);
  const cluster = plugins.hr.hub.cluster;
  if (cluster) {
    void plugins.hr.hub.ready().then(() => {
      console.log(`cluster node ${cluster.nodeId} (hr) internal endpoint ${cluster.address?.host}:${cluster.address?.port}`);
    });
    plugins.hr.hub.on('peer-up', (peer) => console.log(`peer up: ${peer.nodeId}`));
    plugins.hr.hub.on('peer-down', (nodeId) => console.log(`peer down: ${nodeId}`));
  }
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing streams (clients are told to reconnect)`);
  await Promise.all([plugins.hr.close(), plugins.hunter.close()]);
  server.close();
  server.closeAllConnections();
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
