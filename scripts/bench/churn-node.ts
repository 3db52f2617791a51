// One server of the churn benchmark (forked by scripts/bench/churn.ts with --expose-gc).
// env CHURN_LIB: the lib/index.ts to load (default this tree's).
// env CHURN_ENGINE:
//   single  one node, no cluster;
//   redis   the Redis engine (`cluster: { redis: CHURN_REDIS_URL, redisPrefix: CHURN_PREFIX }`);
//   lan     the HTTP cluster on loopback (`cluster: { secret: CHURN_SECRET }`, static peers set later).
// The app is the test app: `authorizeChannel` allows `room:*` only, and members of
// rooms are told of joins and leaves (`presence.notifyMembers`, as example/app.ts does), so every
// first join / last leave of a (user, channel) pair is a presence decision. Everything else
// is the library's defaults (rate limits included, where the library has them).
import Koa from 'koa';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { ssePlugin as SsePluginFn } from '../../lib/index.js';
import { serveIpc } from './ipc.js';
import { nowUs, payload } from './stats.js';

// CHURN_LIB: the lib/index.ts to run (churn.ts --before runs the code before the fixes too).
const { ssePlugin } = (await import(process.env.CHURN_LIB ?? '../../lib/index.js')) as { ssePlugin: typeof SsePluginFn };
const engine = process.env.CHURN_ENGINE;
const isRoom = (channel: string): boolean => channel.startsWith('room:');
const cluster =
  engine === 'redis'
    ? { cluster: { redis: process.env.CHURN_REDIS_URL!, redisPrefix: process.env.CHURN_PREFIX! } }
    : engine === 'lan'
      ? { cluster: { secret: process.env.CHURN_SECRET!, healthIntervalMs: 500 } }
      : {};
const app = new Koa();
const plugin = ssePlugin('/sse', {
  authenticate: (ctx) => ({ id: String(ctx.query.u) }),
  authorizeChannel: (_ctx, _user, channel) => isRoom(channel),
  presence: { notifyMembers: isRoom },
  ...cluster,
});
app.use(plugin);
const server = app.listen(0, '127.0.0.1');
const hub = plugin.hub;
await Promise.all([hub.ready(), once(server, 'listening')]);
let news = 0;
hub.on('presence-join', () => news++);
hub.on('presence-leave', () => news++);

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('churn-node.ts needs --expose-gc');

serveIpc({
  address: () => {
    const internal = hub.cluster?.address;
    return { web: (server.address() as AddressInfo).port, internal: internal && `${internal.host}:${internal.port}` };
  },
  setPeers: ({ peers }) => {
    hub.cluster!.setPeers(peers as string[]);
    return true;
  },
  peers: () => hub.cluster?.peers().length ?? 0,
  /** Sends to `user` at `rate` per second for `seconds`, each stamped with its send time. */
  pace: async ({ user, rate, seconds }) => {
    const total = Number(rate) * Number(seconds);
    const start = nowUs();
    let sent = 0;
    while (sent < total) {
      const wait = start + (sent * 1e6) / Number(rate) - nowUs();
      if (wait > 1000) await new Promise((r) => setTimeout(r, wait / 1000));
      await hub.sendByUserId(String(user), 'bench', payload(sent));
      sent++;
    }
    return { sent };
  },
  /** heapUsed now, without a GC (a sample during the flood). */
  heapNow: () => process.memoryUsage().heapUsed,
  /** heapUsed and RSS after two full GCs. */
  heap: () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return { heapUsed: m.heapUsed, rss: m.rss };
  },
  /** Presence joins and leaves decided here so far. */
  news: () => news,
  stop: async () => {
    await plugin.close({ drainMs: 200 });
    server.closeAllConnections();
    server.close();
    return true;
  },
});
process.send?.({ ready: true });
