// koa-sse-server on one port with BENCH_WORKERS workers (startWorkers, node:cluster), or in
// this one process with BENCH_WORKERS=0. Forked by workers.ts: this process (the primary, or
// the one server) answers the orchestrator over IPC; the work is asked of whichever worker the
// primary hands a control request to (`/bench/*` on the same port). CPU is the sum over every
// process of the server (the primary and each worker, from /proc).
import Koa from 'koa';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { setImmediate as turn } from 'node:timers/promises';
import { ssePlugin, startWorkers, type PrimaryRole, type WorkerContext } from '../../../lib/index.js';
import { serveIpc } from '../ipc.js';
import { nowUs, payload } from '../stats.js';

const WORKERS = Number(process.env.BENCH_WORKERS ?? 0);
const TICKS_PER_SECOND = 100;

/** CPU time of a process in µs (utime + stime of /proc/<pid>/stat, in clock ticks). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS_PER_SECOND;
}

/** The app of one server process (a worker, or the one process). */
function app(worker: WorkerContext | undefined): Koa {
  const koa = new Koa();
  let errors = 0;
  koa.on('error', (err: unknown) => {
    if (errors++ < 5) console.error('[lib-workers server]', err);
  });
  const plugin = ssePlugin('/sse', {
    name: 'bench',
    authenticate: (ctx) => {
      const token = ctx.query['access-token'];
      return typeof token === 'string' ? { id: token } : null;
    },
    ...(worker === undefined ? {} : { cluster: worker.cluster() }),
  });
  koa.use(plugin);
  koa.use(async (ctx, next) => {
    if (ctx.path === '/bench/count') {
      ctx.body = { count: await plugin.hub.getConnectionCount(), pid: process.pid };
    } else if (ctx.path === '/bench/burst') {
      // As the harness's burst: `batch` broadcasts back to back per event-loop turn. Count-free:
      // nobody reads the number, and the other workers need not answer.
      const k = Number(ctx.query.k);
      const batch = Number(ctx.query.batch);
      for (let i = 0; i < k;) {
        for (let j = 0; j < batch && i < k; j++, i++) void plugin.hub.sendAll('tick', payload(i), { count: false });
        await turn();
      }
      ctx.body = { sent: k, pid: process.pid };
    } else await next();
  });
  return koa;
}

async function get(port: number, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { connection: 'close' } }).catch((err: unknown) => {
    throw new Error(`${path}: ${String(err)}`);
  });
  return (await res.json()) as Record<string, unknown>;
}

let port = 0;
let pids: () => number[] = () => [process.pid];
let close: () => Promise<void> = async () => {};

if (WORKERS === 0) {
  const server = app(undefined).listen(0, '127.0.0.1', 8192);
  // Out of file descriptors, accept fails (EMFILE): the held-streams phase measures that limit.
  server.on('error', (err) => console.error('[lib-workers server]', String(err)));
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as AddressInfo).port;
} else {
  const role = await startWorkers({
    workers: WORKERS,
    signals: false,
    start: async (worker) => {
      const server = app(worker).listen(Number(process.env.BENCH_SHARED_PORT), '127.0.0.1', 8192);
      server.on('error', (err) => console.error(`[lib-workers worker ${worker.slot}]`, String(err)));
      await new Promise((r) => server.once('listening', r));
      return { close: () => void server.close() };
    },
  });
  // A worker serves until the primary closes it; only the primary goes on.
  if (role.role === 'worker') await new Promise<never>(() => {});
  const pool = (role as PrimaryRole).pool;
  await pool.ready();
  port = Number(process.env.BENCH_SHARED_PORT);
  pids = () => [process.pid, ...pool.pids.values()];
  close = () => pool.close();
}

const cpuMark = (): { t: number; cpu: number } => ({ t: nowUs(), cpu: pids().reduce((s, pid) => s + cpuOf(pid), 0) });

serveIpc({
  count: async () => Number((await get(port, '/bench/count')).count),
  cpu: () => cpuMark(),
  pids: () => pids(),
  burst: async (a) => {
    const start = cpuMark();
    await get(port, `/bench/burst?k=${Number(a.k)}&batch=${Number(a.batch)}`);
    return { start, issued: cpuMark() };
  },
  stop: async () => {
    await close();
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
process.send?.({ ready: port });
