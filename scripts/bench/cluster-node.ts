// One node of the cluster benchmark (forked by scripts/bench/cluster.ts). env SSE_CLUSTER_SECRET.
// Listens on random ports (web and internal) and answers them over IPC (`address`); its peers
// come later (`setPeers`), once every node listens. storm.ts also sets SSE_QOS_FILE (durable
// delivery; SSE_QOS_COPIES: `qos.replication.copies`) and SSE_RECONNECT_MS (`reconnectTimeMs`), or, for the Redis engine, SSE_REDIS_URL
// instead of the secret and the file: `cluster: { redis }` + `qos: { redis }` (no internal
// port, no peer list: the nodes find each other in Redis).
import Koa from 'koa';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ssePlugin } from '../../lib/index.js';
import { serveIpc } from './ipc.js';
import { nowUs, payload } from './stats.js';

const redis = process.env.SSE_REDIS_URL;
const app = new Koa();
const plugin = ssePlugin('/sse', {
  name: 'bench',
  authenticate: (ctx) => ({ id: String(ctx.query.u) }),
  ...(redis === undefined
    ? {
        cluster: { secret: process.env.SSE_CLUSTER_SECRET!, host: '127.0.0.1', healthIntervalMs: 500 },
        ...(process.env.SSE_QOS_FILE === undefined
          ? {}
          : {
              qos: {
                file: process.env.SSE_QOS_FILE,
                ...(process.env.SSE_QOS_COPIES === undefined ? {} : { replication: { copies: Number(process.env.SSE_QOS_COPIES) } }),
              },
            }),
      }
    : { cluster: { redis, healthIntervalMs: 500 }, qos: { redis } }),
  ...(process.env.SSE_RECONNECT_MS === undefined ? {} : { reconnectTimeMs: Number(process.env.SSE_RECONNECT_MS) }),
});
let pacing = false;
app.use(plugin);
const server = app.listen(0, '127.0.0.1');
const hub = plugin.hub;
await Promise.all([hub.ready(), once(server, 'listening')]);

serveIpc({
  /** The web port, and the internal `host:port` (none on the Redis engine). */
  address: () => {
    const internal = hub.cluster!.address;
    return { web: (server.address() as AddressInfo).port, internal: internal && `${internal.host}:${internal.port}` };
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
  cpu: () => {
    const c = process.cpuUsage();
    return { t: nowUs(), cpu: c.user + c.system };
  },
  /** Durable message j to user u<k>, for every k < users and j < perUser with (k + j) mod nodes = node: owners spread evenly. */
  durable: async ({ users, perUser, node, nodes }) => {
    const sends: Promise<unknown>[] = [];
    for (let k = 0; k < Number(users); k++) {
      for (let j = 0; j < Number(perUser); j++)
        if ((k + j) % Number(nodes) === Number(node)) sends.push(hub.qos.sendByUserId(`u${k}`, 'bell', { d: j }));
    }
    await Promise.all(sends);
    return sends.length;
  },
  /**
   * `count` durable sends to users `${prefix}0` … `${prefix}${users - 1}` (away: each message
   * stays stored), `concurrency` in flight at once as many request handlers would be; answers
   * the wall time and the copies each send reported when it resolved.
   */
  durableLoop: async ({ count, concurrency, users, prefix }) => {
    const copies: Record<string, number> = {};
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: Number(concurrency) }, async () => {
        while (next < Number(count)) {
          const n = next++;
          const result = await hub.qos.sendByUserId(`${String(prefix)}${n % Number(users)}`, 'bell', payload(n));
          const c = String(result.copies);
          copies[c] = (copies[c] ?? 0) + 1;
        }
      }),
    );
    return { ms: performance.now() - t0, copies };
  },
  /** Sends to random users of `ids` at `rate`/s until `stopPace` or `maxSeconds`. */
  paceRandom: async ({ ids, rate, maxSeconds }) => {
    const users = ids as string[];
    const until = performance.now() + Number(maxSeconds) * 1000;
    const t0 = performance.now();
    let sent = 0;
    pacing = true;
    while (pacing && performance.now() < until) {
      const wait = t0 + (sent * 1000) / Number(rate) - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      hub.sendByUserId(users[Math.floor(Math.random() * users.length)]!, 'tick', payload(sent)).catch(() => 0);
      sent++;
    }
    return { sent };
  },
  stopPace: () => {
    pacing = false;
    return true;
  },
  stop: async () => {
    await plugin.close();
    server.closeAllConnections();
    server.close();
    return true;
  },
});
process.send?.({ ready: true });
