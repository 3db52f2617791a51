// One server of the routing benchmark (forked by scripts/bench/routing.ts): Koa + ssePlugin
// from the lib/ folder given as argument, so that two builds of the library can run side by
// side. Reports its own CPU time between `start` and `stop`.
import Koa from 'koa';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { serveIpc } from './ipc.js';

const libDir = process.argv[2];
if (libDir === undefined) throw new Error('usage: routing-server.ts <lib dir>');
const lib = (await import(pathToFileURL(`${libDir}/index.ts`).href)) as typeof import('../../lib/index.js');

const options: Parameters<typeof lib.ssePlugin>[1] = {
  authenticate: (ctx) => {
    const token = ctx.query['access-token'];
    return typeof token === 'string' && token !== '' ? { id: token } : null;
  },
  onMessage: (path, _ctx, _connection, body) => ({ path, body }),
};
// The benchmark sends thousands of requests per second on one connection, far past the
// per-connection limit of message/*.do (20/s, 429 beyond): it measures the routing, so the
// limit is off. A build from before the option (the default `--before`) refuses it and has no limit.
function makePlugin(): ReturnType<typeof lib.ssePlugin> {
  try {
    return lib.ssePlugin('/sse/bench', { ...options, requestRateLimit: false });
  } catch (err) {
    if (!(err instanceof TypeError && err.message.includes('requestRateLimit'))) throw err;
    return lib.ssePlugin('/sse/bench', options);
  }
}
const plugin = makePlugin();
const app = new Koa();
app.silent = true;
app.use(plugin);
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));

let cpuAtStart = process.cpuUsage();
serveIpc({
  port: () => (server.address() as AddressInfo).port,
  start: () => {
    cpuAtStart = process.cpuUsage();
  },
  /** Waits until the streams the client closed are gone here too, then answers the CPU µs spent. */
  stop: async (args) => {
    const keep = Number(args.keepStreams ?? 0);
    for (let i = 0; i < 200 && (await plugin.hub.getConnectionCount()) > keep; i++) await new Promise((r) => setTimeout(r, 10));
    const used = process.cpuUsage(cpuAtStart);
    return used.user + used.system;
  },
});
