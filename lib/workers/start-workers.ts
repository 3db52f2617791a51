import cluster from 'node:cluster';
import os from 'node:os';
import { checkOptionShapes } from '../core/option-shape.js';
import { DISCOVERIES_SETTLED, WorkerContext, isWorkerInit, type WorkerInit } from './worker-context.js';
import { SLOT_ENV, WorkerPool, type WorkerStateMessage } from './worker-pool.js';
import { WORKERS_OPTION_SHAPES, type RunningWorker, type WorkersOptions } from './workers-options.js';

/** What {@link startWorkers} gives the primary. */
export interface PrimaryRole {
  role: 'primary';
  /** The workers: `ready()`, `restart()`, `close()`, `pids`, events `worker-ready` / `worker-exit`. */
  pool: WorkerPool;
}

/** What {@link startWorkers} gives a worker, once its `start` resolved. */
export interface WorkerRole {
  role: 'worker';
  worker: WorkerContext;
}

/** A failed send to the primary (it is gone: the worker closes on `disconnect`) is no news. */
const ignore = (): void => {};

/** How long a worker waits for the primary's first message before it gives up. */
const INIT_TIMEOUT_MS = 10_000;

/**
 * Runs the app on every core, on one port, with Node's `cluster` module. Call it at the top
 * of your entry script: in the primary it forks the workers (the same script runs in each)
 * and resolves at once with the {@link WorkerPool}; in a worker it runs `start` and resolves
 * once that did. Each worker's hubs are nodes of one cluster (`worker.cluster()`): a send on
 * any worker reaches the streams of all, and a page's `message`, `ack` or `join` that lands
 * on a worker that does not hold its stream is served through the cluster. Durable queues are
 * per worker slot (`worker.qos({ file })`: the worker that replaces a crashed one opens the
 * same file) or shared in Redis.
 *
 * ```ts
 * const running = await startWorkers({
 *   workers: 'auto',
 *   start: (worker) => {
 *     const plugin = ssePlugin('/sse', { authenticate, cluster: worker.cluster(), qos: worker.qos({ file: './data/q.db' }) });
 *     const server = new Koa().use(plugin).listen(3000);
 *     return { close: async () => { server.close(); await plugin.close(); server.closeAllConnections(); } };
 *   },
 * });
 * ```
 *
 * SIGTERM or SIGINT to the primary closes every worker gracefully (their streams are told to
 * reconnect), SIGHUP restarts them one by one; a worker that dies is restarted in its slot.
 * A worker closes when the primary asks, when its IPC channel to the primary closes (the
 * primary died), or on its own SIGTERM / SIGINT (then the primary starts another in its slot).
 * @throws TypeError for bad options; in a worker, rejects when `start` throws (the worker
 *   then exits with code 1).
 */
export async function startWorkers(options: WorkersOptions): Promise<PrimaryRole | WorkerRole> {
  checkOptionShapes(options, WORKERS_OPTION_SHAPES, '');
  if (typeof options.start !== 'function') throw new TypeError('startWorkers: start (a function run in each worker) is required');
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
  if (!(shutdownTimeoutMs > 0)) throw new TypeError('shutdownTimeoutMs must be > 0');
  if (cluster.isWorker) {
    if (process.env[SLOT_ENV] === undefined)
      throw new TypeError('startWorkers runs in a primary, or in a worker it started: this worker was forked by someone else');
    return { role: 'worker', worker: await runWorker(options.start) };
  }
  const size = options.workers === undefined || options.workers === 'auto' ? os.availableParallelism() : options.workers;
  if (!Number.isInteger(size) || size < 1) throw new TypeError(`workers must be 'auto' or an integer >= 1, got ${String(options.workers)}`);
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  if (!(readyTimeoutMs > 0)) throw new TypeError('readyTimeoutMs must be > 0');
  const pool = new WorkerPool(size, { shutdownTimeoutMs, readyTimeoutMs, restart: options.restart ?? true, signals: options.signals ?? true });
  return { role: 'primary', pool };
}

/** A worker: waits for its slot, runs `start`, says it is ready, closes when told. */
async function runWorker(start: WorkersOptions['start']): Promise<WorkerContext> {
  const init = await new Promise<WorkerInit>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('startWorkers: no word from the primary')), INIT_TIMEOUT_MS);
    const onMessage = (message: unknown): void => {
      if (!isWorkerInit(message)) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(message);
    };
    process.on('message', onMessage);
    process.send?.({ sse: 'worker-hello' } satisfies WorkerStateMessage, ignore);
  });
  const worker = new WorkerContext(init);
  // Runs after the handlers below are in place (a microtask later): a shutdown during start waits for it.
  const running: Promise<RunningWorker> = Promise.resolve().then(() => start(worker));
  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    void (async () => {
      let code = 0;
      try {
        await (await running).close();
      } catch (err) {
        console.error(`worker ${worker.slot}: close failed`, err);
        code = 1;
      }
      process.exit(code);
    })();
  };
  process.on('message', (message: unknown) => {
    if ((message as { sse?: unknown } | null)?.sse === 'worker-shutdown') shutdown();
  });
  process.on('disconnect', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  try {
    await running;
  } catch (err) {
    console.error(`worker ${worker.slot}: start failed`, err);
    process.exit(1);
  }
  // `start` need not wait for its hubs' cluster nodes: the primary hears of them before it
  // hears that this worker serves, so that it waits for their peers too.
  await worker[DISCOVERIES_SETTLED]();
  if (!closing) process.send?.({ sse: 'worker-serves' } satisfies WorkerStateMessage, ignore);
  return worker;
}
