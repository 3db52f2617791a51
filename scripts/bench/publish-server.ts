// The server of scripts/bench/publish.ts: one Koa app with the plugin and the publish API (one
// key, no rate limit), on loopback. `inproc` runs sends through `ctx.sse`'s hub inside this
// process, the baseline the publish API is compared with.
import Koa from 'koa';
import type { AddressInfo } from 'node:net';
import { hashApiKey, ssePlugin } from '../../lib/index.js';
import { serveIpc } from './ipc.js';
import { nowUs } from './stats.js';

/** The API key's secret, given by the orchestrator. */
const BENCH_KEY = process.argv[2]!;

const app = new Koa();
const plugin = ssePlugin('/sse', {
  name: 'bench',
  authenticate: (ctx) => {
    const token = ctx.query['access-token'];
    return typeof token === 'string' && token !== '' ? { id: token } : null;
  },
  publish: { keys: [{ id: 'bench', hash: hashApiKey(BENCH_KEY) }], rate: false, maxBatch: 1000 },
});
app.use(plugin);
const server = app.listen(0, '127.0.0.1');
await new Promise<void>((resolve) => server.once('listening', () => resolve()));

serveIpc({
  /** `n` sends to user `bench`, `concurrency` at a time, as an app handler would make them. */
  inproc: async (args) => {
    const n = Number(args.n);
    const concurrency = Number(args.concurrency);
    let seq = 0;
    const worker = async (): Promise<void> => {
      while (seq < n) {
        const s = seq++;
        await plugin.hub.sendByUserId('bench', 'tick', { t: nowUs(), seq: s });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return null;
  },
  stop: () => {
    setImmediate(() => process.exit(0));
    return null;
  },
});
process.send!({ ready: { port: (server.address() as AddressInfo).port } });
