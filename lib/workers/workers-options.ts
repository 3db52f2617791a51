import type { ShapesOf } from '../core/option-shape.js';
import type { WorkerContext } from './worker-context.js';

/** What a worker's `start` returns: how to close it gracefully. */
export interface RunningWorker {
  /**
   * Closes the worker: stop listening, close the plugins (their streams are told to
   * reconnect, which the other workers take), end what is left. The worker exits once it
   * resolves (exit code 0), or after the primary's `shutdownTimeoutMs` (SIGKILL).
   */
  close(): Promise<void> | void;
}

/** Options of {@link startWorkers}. */
export interface WorkersOptions {
  /** How many workers: a number ≥ 1, or `'auto'`: one per core (`os.availableParallelism()`). Default `'auto'`. */
  workers?: number | 'auto';
  /**
   * Runs in each worker (never in the primary): build the app with `worker.cluster()` and
   * `worker.qos()` in the plugin's options, listen on the shared port, return how to close
   * it. A worker whose `start` throws exits with code 1 (and is restarted).
   */
  start: (worker: WorkerContext) => Promise<RunningWorker> | RunningWorker;
  /**
   * Restart a worker that exits without being asked (a crash, SIGKILL, an exit of its own),
   * in the same slot: after 100 ms, doubling for a worker that lived less than 10 s, at most
   * 10 s apart. Default `true`.
   */
  restart?: boolean;
  /** How long a worker may take to close (shutdown, restart) before it is killed, in ms. Default `30000`. */
  shutdownTimeoutMs?: number;
  /**
   * How long `pool.ready()`, and `pool.restart()` for each replacement, wait for the workers
   * to serve and verify each other as cluster peers before they reject with
   * `ERR_SSE_WORKERS_NOT_READY` (saying what is missing), in ms. Default `60000`.
   */
  readyTimeoutMs?: number;
  /**
   * Handle the primary's signals: SIGTERM and SIGINT close every worker gracefully (then the
   * primary exits by itself), SIGHUP restarts them one after the other. Default `true`.
   */
  signals?: boolean;
}

/** What each option of {@link WorkersOptions} may be. */
export const WORKERS_OPTION_SHAPES: ShapesOf<WorkersOptions> = {
  workers: { oneOf: ['auto'], or: 'number' },
  start: 'function',
  restart: 'boolean',
  shutdownTimeoutMs: 'number',
  readyTimeoutMs: 'number',
  signals: 'boolean',
};
