// One node of the cluster benchmark (forked by scripts/bench/cluster.ts). env SSE_CLUSTER_SECRET.
// Listens on random ports (web and internal) and answers them over IPC (`address`); its peers
// come later (`setPeers`), once every node listens.
import Koa from 'koa';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ssePlugin } from '../../lib/index.js';
import { serveIpc } from './ipc.js';
import { nowUs, payload } from './stats.js';

const app = new Koa();
const plugin = ssePlugin('/sse', {
  authenticate: (ctx) => ({ id: String(ctx.query.u) }),
  cluster: { secret: process.env.SSE_CLUSTER_SECRET!, healthIntervalMs: 500 },
});
app.use(plugin);
const server = app.listen(0, '127.0.0.1');
const hub = plugin.hub;
await Promise.all([hub.ready(), once(server, 'listening')]);

serveIpc({
  address: () => {
    const internal = hub.cluster!.address!;
    return { web: (server.address() as AddressInfo).port, internal: `${internal.host}:${internal.port}` };
  },
  setPeers: ({ peers }) => {
    hub.cluster!.setPeers(peers as string[]);
    return true;
  },
  peers: () => hub.cluster!.peers().length,
  connections: () => hub.getConnectionCount(),
  /** Sends to `user` at `rate` per second for `seconds`, each stamped with its send time. */
  pace: async ({ user, rate, seconds }) => {
    const total = Number(rate) * Number(seconds);
    const start = nowUs();
    let sent = 0;
    let delivered = 0;
    while (sent < total) {
      const due = start + (sent * 1e6) / Number(rate);
      const wait = due - nowUs();
      if (wait > 1000) await new Promise((r) => setTimeout(r, wait / 1000));
      delivered += await hub.sendByUserId(String(user), 'bench', payload(sent));
      sent++;
    }
    return { sent, delivered };
  },
  /** `count` broadcasts as fast as the hub accepts them. */
  burst: async ({ count }) => {
    let delivered = 0;
    const sends: Promise<number>[] = [];
    for (let i = 0; i < Number(count); i++) sends.push(hub.sendAll('bench', payload(i)));
    for (const n of await Promise.all(sends)) delivered += n;
    return { delivered };
  },
  stop: async () => {
    await plugin.close();
    server.closeAllConnections();
    server.close();
    return true;
  },
});
