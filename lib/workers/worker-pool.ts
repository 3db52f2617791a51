import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isWorkerNodeMessage, type WorkerNode, type WorkerPeersMessage } from '../cluster/primary-discovery.js';
import { SseWorkersNotReadyError } from '../core/errors.js';
import type { WorkerInit } from './worker-context.js';

/** The environment variable that tells a forked process it is a worker of {@link WorkerPool}, and its slot. @internal */
export const SLOT_ENV = 'SSE_WORKER_SLOT';

/** A worker ready (see {@link WorkerPoolEvents}) or exited. */
export interface WorkerStatus {
  slot: number;
  pid: number;
}

/** Events of {@link WorkerPool}. */
export interface WorkerPoolEvents {
  /**
   * A worker is ready: its `start` resolved (it serves), and the cluster nodes it made with
   * `worker.cluster()` and those of the other workers have verified each other as peers
   * (a send on any of them counts its streams). Once per worker process.
   */
  'worker-ready': [worker: WorkerStatus];
  /** A worker exited; `restarting`: the primary starts another in its slot. */
  'worker-exit': [worker: WorkerStatus & { code: number | null; signal: string | null; restarting: boolean }];
}

/**
 * Messages a worker sends the primary besides its nodes' (`WorkerNodeMessage`): asking
 * for its slot, and `worker-serves`: its `start` resolved and each node it made with
 * `worker.cluster()` is told to the primary (those messages came before on the same channel).
 * @internal
 */
export interface WorkerStateMessage {
  sse: 'worker-hello' | 'worker-serves';
}

/** A node of a worker, as the primary keeps it: where it listens, and the peers it verified as of which list. */
interface PoolNode extends WorkerNode {
  slot: number;
  verified: { seq: number; peers: ReadonlySet<string> } | undefined;
}

/** A group's nodes, and the `seq` of the list last sent about them. */
interface Group {
  nodes: Map<string, PoolNode>;
  seq: number;
}

interface Slot {
  worker: Worker;
  startedAt: number;
  /** Its `start` resolved. */
  serves: boolean;
  /** `worker-ready` was emitted for it. */
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
 *
 * Ready means more than serving: each worker's cluster node tells the primary which peers it
 * has verified as of the primary's latest list (`PrimaryDiscovery`), and a worker is ready
 * once the nodes of every group it is in have all verified each other. Only this machine's
 * workers are awaited: peers from a static list or discovery of other machines are not. With
 * `worker.cluster({ redis })` the workers find each other in Redis, not through the primary,
 * and each node tells it the same way which of them it counts as live peers (the group
 * `redis:<prefix>`): ready means the same there.
 */
export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  /** How many workers (slots 1..size). */
  readonly size: number;
  readonly #shutdownTimeoutMs: number;
  readonly #restart: boolean;
  readonly #secret = randomBytes(32).toString('base64url');
  readonly #runId = randomBytes(3).toString('hex');
  readonly #slots = new Map<number, Slot>();
  readonly #readyTimeoutMs: number;
  /** The workers' nodes by group, then by node id. */
  readonly #groups = new Map<string, Group>();
  /** The `seq` of the last list sent, over every group. */
  #seq = 0;
  #closing: Promise<void> | undefined;
  #restarting: Promise<void> | undefined;
  readonly #waiters = new Set<() => void>();
  readonly #timers = new Set<NodeJS.Timeout>();

  /** @internal Started by {@link startWorkers}. */
  constructor(size: number, options: { shutdownTimeoutMs: number; readyTimeoutMs: number; restart: boolean; signals: boolean }) {
    super();
    this.size = size;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs;
    this.#readyTimeoutMs = options.readyTimeoutMs;
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

  /**
   * Resolves once every slot has a worker that serves (its `start` resolved) and every
   * worker's cluster node has verified every other worker's as a peer: a send on any worker
   * then counts the streams of all. Resolves too once the workers are closing.
   * @throws SseWorkersNotReadyError (`ERR_SSE_WORKERS_NOT_READY`, rejects) after
   *   `readyTimeoutMs`, saying what is missing; the workers go on.
   */
  ready(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new Error('The workers are closing'));
    return this.#until(() => this.#closing !== undefined || this.#allReady(), 'pool.ready()');
  }

  /**
   * Replaces every worker, one slot after the other: the old one closes gracefully (its
   * streams reconnect to the others), then its replacement starts in the same slot (same
   * store file) and is ready, as {@link WorkerPool.ready} says (it serves, it and the others
   * verified each other), before the next slot's turn. So at most one worker is missing.
   * @throws SseWorkersNotReadyError (rejects) when a replacement is not ready within
   *   `readyTimeoutMs`: the slots after it keep their workers.
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
          await this.#until(() => this.#closing !== undefined || this.#slots.get(slot)?.ready === true, `pool.restart() of worker ${slot}`);
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
    const entry: Slot = {
      worker,
      startedAt: Date.now(),
      serves: false,
      ready: false,
      stopping: false,
      quickExits,
      exited: new Promise((r) => (exited = r)),
    };
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
      let group = this.#groups.get(message.group);
      if (message.sse === 'worker-verified') {
        const node = group?.nodes.get(message.nodeId);
        // A list's answer from the node of this very worker (a late one of a node since gone is ignored).
        if (node?.slot === slot) node.verified = { seq: message.seq, peers: new Set(message.peers) };
      } else {
        if (group === undefined) this.#groups.set(message.group, (group = { nodes: new Map(), seq: 0 }));
        if (message.sse === 'worker-node') group.nodes.set(message.node.nodeId, { ...message.node, slot, verified: undefined });
        else group.nodes.delete(message.nodeId);
        this.#broadcast(message.group);
      }
      this.#wake();
    } else if (sse === 'worker-serves') {
      entry.serves = true;
      this.#wake();
    }
  }

  /** Every slot has a worker that serves, and the nodes of every group have verified each other. */
  #allReady(): boolean {
    if (this.#slots.size < this.size) return false;
    for (const s of this.#slots.values()) if (!s.serves) return false;
    for (const group of this.#groups.values()) if (!isComplete(group)) return false;
    return true;
  }

  /** What keeps the pool from being ready, in words, for {@link SseWorkersNotReadyError}. */
  #missing(): string[] {
    const out: string[] = [];
    for (let k = 1; k <= this.size; k++) {
      const s = this.#slots.get(k);
      if (s === undefined) out.push(`worker ${k} is not running`);
      else if (!s.serves) out.push(`worker ${k} does not serve yet (its start, or a cluster node it made with worker.cluster(), has not started)`);
    }
    for (const [name, group] of this.#groups) {
      const nodes = [...group.nodes.values()];
      for (const node of nodes) {
        if (node.verified?.seq !== group.seq) {
          out.push(`node ${node.nodeId} (worker ${node.slot}) has not answered the latest list of group ${name}`);
          continue;
        }
        const unverified = nodes.filter((other) => other !== node && !node.verified!.peers.has(other.nodeId)).map((other) => other.nodeId);
        if (unverified.length > 0) out.push(`node ${node.nodeId} (worker ${node.slot}) has not verified ${unverified.join(', ')} (group ${name})`);
      }
    }
    return out;
  }

  /** Forgets a gone worker's nodes and tells the others: they stop counting it at once. */
  #dropNodes(slot: number): void {
    for (const [name, group] of this.#groups) {
      let changed = false;
      for (const [id, node] of group.nodes) {
        if (node.slot === slot) {
          group.nodes.delete(id);
          changed = true;
        }
      }
      if (changed) this.#broadcast(name);
    }
  }

  /**
   * Sends a group's list to every worker under a new `seq`: each node answers it with the
   * peers it verified since (a worker replaced under the same node id counts only once the
   * others verified the new one, the old one having been dropped by an earlier list).
   */
  #broadcast(name: string): void {
    const group = this.#groups.get(name);
    if (group === undefined) return;
    group.seq = ++this.#seq;
    const nodes = [...group.nodes.values()].map(({ nodeId, host, port }) => ({ nodeId, host, port }));
    const message: WorkerPeersMessage = { sse: 'worker-peers', group: name, nodes, seq: group.seq };
    if (nodes.length === 0) this.#groups.delete(name);
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

  /** Resolves once `done()`; rejects with what is missing after `readyTimeoutMs`. */
  #until(done: () => boolean, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new SseWorkersNotReadyError(what, this.#readyTimeoutMs, this.#missing()));
      }, this.#readyTimeoutMs);
      this.#waiters.add(check);
    });
  }

  /**
   * Something changed: announces the workers now ready (each serves, and every group its
   * nodes are in is complete), then runs the waiters' checks.
   */
  #wake(): void {
    if ([...this.#slots.values()].some((s) => s.serves && !s.ready)) {
      const unsettled = new Set<number>();
      for (const group of this.#groups.values()) if (!isComplete(group)) for (const node of group.nodes.values()) unsettled.add(node.slot);
      for (const [slot, s] of this.#slots) {
        if (s.ready || !s.serves || unsettled.has(slot)) continue;
        s.ready = true;
        this.emit('worker-ready', { slot, pid: s.worker.process.pid ?? 0 });
      }
    }
    for (const check of [...this.#waiters]) check();
  }
}

/** Whether every node of the group answered the latest list, having verified every other node. */
function isComplete(group: Group): boolean {
  for (const node of group.nodes.values()) {
    const verified = node.verified;
    if (verified?.seq !== group.seq) return false;
    for (const other of group.nodes.keys()) if (other !== node.nodeId && !verified.peers.has(other)) return false;
  }
  return true;
}
