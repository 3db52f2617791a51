import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isWorkerNodeMessage, type WorkerNode, type WorkerPeersMessage } from '../cluster/primary-discovery.js';
import type { WorkerInit } from './worker-context.js';

/** The environment variable that tells a forked process it is a worker of {@link WorkerPool}, and its slot. @internal */
export const SLOT_ENV = 'SSE_WORKER_SLOT';

/** A worker started (`ready`: its `start` resolved) or exited. */
export interface WorkerStatus {
  slot: number;
  pid: number;
}

/** Events of {@link WorkerPool}. */
export interface WorkerPoolEvents {
  /** A worker's `start` resolved: it serves. */
  'worker-ready': [worker: WorkerStatus];
  /** A worker exited; `restarting`: the primary starts another in its slot. */
  'worker-exit': [worker: WorkerStatus & { code: number | null; signal: string | null; restarting: boolean }];
}

/** Messages a worker sends the primary besides its nodes: asking for its slot, and its `start` resolved. @internal */
export interface WorkerStateMessage {
  sse: 'worker-hello' | 'worker-ready';
}

interface Slot {
  worker: Worker;
  startedAt: number;
  ready: boolean;
  /** Asked to close (shutdown or restart): its exit is no crash. */
  stopping: boolean;
  /** Short lives in a row, for the restart delay. */
  quickExits: number;
  /** Resolves on this worker's exit. */
  exited: Promise<void>;
}

const MIN_RESTART_MS = 100;
const MAX_RESTART_MS = 10_000;
const QUICK_LIFE_MS = 10_000;

/**
 * The primary's side of {@link startWorkers}: forks one worker per slot, tells each its
 * slot and the cluster's secret, relays every group's node list to all workers, restarts a
 * worker that died in its slot, and closes or restarts them on request.
 */
export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  /** How many workers (slots 1..size). */
  readonly size: number;
  readonly #shutdownTimeoutMs: number;
  readonly #restart: boolean;
  readonly #secret = randomBytes(32).toString('base64url');
  readonly #runId = randomBytes(3).toString('hex');
  readonly #slots = new Map<number, Slot>();
  /** Nodes by group, then by slot and node id. */
  readonly #nodes = new Map<string, Map<string, WorkerNode & { slot: number }>>();
  #closing: Promise<void> | undefined;
  #restarting: Promise<void> | undefined;
  readonly #waiters = new Set<() => void>();
  readonly #timers = new Set<NodeJS.Timeout>();

  /** @internal Started by {@link startWorkers}. */
  constructor(size: number, options: { shutdownTimeoutMs: number; restart: boolean; signals: boolean }) {
    super();
    this.size = size;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs;
    this.#restart = options.restart;
    if (options.signals) {
      process.on('SIGTERM', this.#onClose);
      process.on('SIGINT', this.#onClose);
      process.on('SIGHUP', this.#onRestart);
    }
    for (let slot = 1; slot <= size; slot++) this.#fork(slot, 0);
  }

  readonly #onClose = (): void => void this.close();
  readonly #onRestart = (): void => void this.restart().catch(() => {});

  /** The workers' process ids by slot, those running now. */
  get pids(): Map<number, number> {
    return new Map([...this.#slots].map(([slot, s]) => [slot, s.worker.process.pid ?? 0]));
  }

  /** Resolves once every slot has a worker whose `start` resolved (or once the workers are closing). */
  ready(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new Error('The workers are closing'));
    return this.#until(() => this.#closing !== undefined || (this.#slots.size === this.size && [...this.#slots.values()].every((s) => s.ready)));
  }

  /**
   * Replaces every worker, one slot after the other: the old one closes gracefully (its
   * streams reconnect to the others), then its replacement starts in the same slot (same
   * store file) and serves before the next slot's turn. So at most one worker is missing.
   */
  restart(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new Error('The workers are closing'));
    this.#restarting ??= (async () => {
      try {
        for (let slot = 1; slot <= this.size; slot++) {
          const old = this.#slots.get(slot);
          if (old !== undefined) {
            old.stopping = true;
            await this.#stop(old);
          }
          if (this.#closing !== undefined) return;
          if (!this.#slots.has(slot)) this.#fork(slot, 0);
          await this.#until(() => this.#slots.get(slot)?.ready === true || this.#closing !== undefined);
        }
      } finally {
        this.#restarting = undefined;
      }
    })();
    return this.#restarting;
  }

  /** Closes every worker gracefully (each kills after `shutdownTimeoutMs`); resolves once all exited. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const timer of this.#timers) clearTimeout(timer);
      this.#timers.clear();
      const slots = [...this.#slots.values()];
      for (const s of slots) s.stopping = true;
      await Promise.all(slots.map((s) => this.#stop(s)));
      // Nothing is left to do: the primary may exit by itself.
      process.off('SIGTERM', this.#onClose);
      process.off('SIGINT', this.#onClose);
      process.off('SIGHUP', this.#onRestart);
      this.#wake();
    })();
    return this.#closing;
  }

  #fork(slot: number, quickExits: number): void {
    const worker = cluster.fork({ [SLOT_ENV]: String(slot) });
    let exited!: () => void;
    const entry: Slot = { worker, startedAt: Date.now(), ready: false, stopping: false, quickExits, exited: new Promise((r) => (exited = r)) };
    this.#slots.set(slot, entry);
    worker.on('message', (message: unknown) => this.#onMessage(slot, entry, message));
    // A worker's IPC may fail while it dies: its exit says what happened.
    worker.on('error', () => {});
    worker.once('exit', (code, signal) => {
      exited();
      if (this.#slots.get(slot) === entry) this.#slots.delete(slot);
      this.#dropNodes(slot);
      const restarting = this.#restart && !entry.stopping && this.#closing === undefined;
      this.emit('worker-exit', { slot, pid: worker.process.pid ?? 0, code, signal, restarting });
      if (restarting) {
        const quick = Date.now() - entry.startedAt < QUICK_LIFE_MS ? entry.quickExits + 1 : 0;
        const delay = Math.min(MIN_RESTART_MS * 2 ** Math.max(0, quick - 1), MAX_RESTART_MS);
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (this.#closing === undefined && !this.#slots.has(slot)) this.#fork(slot, quick);
        }, delay);
        this.#timers.add(timer);
      }
      this.#wake();
    });
  }

  #onMessage(slot: number, entry: Slot, message: unknown): void {
    if (this.#slots.get(slot) !== entry) return;
    const sse = (message as { sse?: unknown } | null)?.sse;
    if (sse === 'worker-hello') {
      // Asked for, not sent at fork: a message that arrives before the worker's code listens is lost.
      const init: WorkerInit = { sse: 'worker-init', slot, workers: this.size, secret: this.#secret, runId: this.#runId };
      entry.worker.send(init);
    } else if (isWorkerNodeMessage(message)) {
      let nodes = this.#nodes.get(message.group);
      if (nodes === undefined) this.#nodes.set(message.group, (nodes = new Map<string, WorkerNode & { slot: number }>()));
      if (message.sse === 'worker-node') nodes.set(message.node.nodeId, { ...message.node, slot });
      else nodes.delete(message.nodeId);
      this.#broadcast(message.group);
    } else if (sse === 'worker-ready') {
      entry.ready = true;
      this.emit('worker-ready', { slot, pid: entry.worker.process.pid ?? 0 });
      this.#wake();
    }
  }

  /** Forgets a gone worker's nodes and tells the others: they stop counting it at once. */
  #dropNodes(slot: number): void {
    for (const [group, nodes] of this.#nodes) {
      let changed = false;
      for (const [id, node] of nodes) {
        if (node.slot === slot) {
          nodes.delete(id);
          changed = true;
        }
      }
      if (changed) this.#broadcast(group);
    }
  }

  #broadcast(group: string): void {
    const nodes = [...(this.#nodes.get(group)?.values() ?? [])].map(({ nodeId, host, port }) => ({ nodeId, host, port }));
    const message: WorkerPeersMessage = { sse: 'worker-peers', group, nodes };
    for (const s of this.#slots.values()) {
      if (s.worker.isConnected()) s.worker.send(message);
    }
  }

  /** Asks a worker to close; kills it after `shutdownTimeoutMs`; resolves on its exit. */
  async #stop(s: Slot): Promise<void> {
    if (s.worker.isConnected()) s.worker.send({ sse: 'worker-shutdown' });
    else if (!s.worker.isDead()) s.worker.process.kill('SIGTERM');
    const timer = setTimeout(() => s.worker.process.kill('SIGKILL'), this.#shutdownTimeoutMs);
    await s.exited;
    clearTimeout(timer);
  }

  #until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (!done()) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }

  #wake(): void {
    for (const check of [...this.#waiters]) check();
  }
}
