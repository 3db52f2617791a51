import { basename, dirname, extname, join } from 'node:path';
import { REDIS_DISCOVERY, type ClusterOptions } from '../cluster/cluster-options.js';
import { StaticDiscovery, type Discovery } from '../cluster/discovery.js';
import { CombinedDiscovery, PrimaryDiscovery, type PrimaryChannel } from '../cluster/primary-discovery.js';
import type { QosOptions } from '../qos/qos-options.js';

/** Resolves once every `PrimaryDiscovery` the context made has started or closed. @internal */
export const DISCOVERIES_SETTLED = Symbol('discoveriesSettled');

/** What the primary tells a worker before its `start` runs. @internal */
export interface WorkerInit {
  sse: 'worker-init';
  /** 1..workers, kept by the worker that replaces this one. */
  slot: number;
  workers: number;
  /** The LAN cluster's secret of this machine's workers, made by the primary (base64url). */
  secret: string;
  /** The primary's run, in default node ids. */
  runId: string;
}

/** Whether an IPC message is the primary's {@link WorkerInit}. @internal */
export function isWorkerInit(message: unknown): message is WorkerInit {
  const m = message as Partial<WorkerInit> | null;
  return typeof m === 'object' && m !== null && m.sse === 'worker-init' && typeof m.slot === 'number' && typeof m.secret === 'string';
}

/**
 * What a worker started by {@link startWorkers} knows of itself, and the options that make
 * its hubs nodes of one cluster with the other workers: pass `worker.cluster()` as the
 * plugin's `cluster` option and `worker.qos({ file })` as its `qos` option.
 */
export class WorkerContext {
  /** This worker's place, 1..{@link WorkerContext.workers}: a worker restarted after a crash gets the same slot back. */
  readonly slot: number;
  /** How many workers the primary runs. */
  readonly workers: number;
  /** The default node id of this worker's hubs: `<run>-w<slot>`, the same for the worker that replaces it. */
  readonly nodeId: string;
  readonly #secret: string;
  readonly #channel: PrimaryChannel;
  /** The discoveries made by {@link WorkerContext.cluster}: the worker says it serves once each started. */
  readonly #discoveries: PrimaryDiscovery[] = [];

  /** @internal */
  constructor(init: WorkerInit, channel: PrimaryChannel = process) {
    this.slot = init.slot;
    this.workers = init.workers;
    this.nodeId = `${init.runId}-w${init.slot}`;
    this.#secret = init.secret;
    this.#channel = channel;
  }

  /**
   * The `cluster` option of a hub in this worker: a node of the cluster of this machine's
   * workers, its peers learnt from the primary over IPC ({@link PrimaryDiscovery}), its
   * internal endpoint on `127.0.0.1` (random port), the secret made by the primary. Give
   * options to join more than this machine:
   * - `{ redis }`: a node of the Redis engine (the workers find each other in Redis; the node
   *   tells the primary which of them it counts as live peers);
   * - `{ secret, peers, host, port }` (or `discovery`: a {@link Discovery} object): the LAN
   *   cluster of several machines; the list's peers are found beside this machine's workers.
   *   A fixed `port` is this worker's `port + slot - 1`; `host` defaults to every address then.
   *
   * `nodeId`, when given, becomes `<nodeId>-w<slot>`. `discovery: 'mdns'` and `'dns'` do
   * not fit workers (one node per address and port; mDNS's socket would be shared by the
   * workers): a TypeError.
   *
   * Give the options to a hub made in `start`: the worker tells the primary it serves only
   * once that hub's cluster node started (options never given to a hub hold it back until
   * `readyTimeoutMs`), and `pool.ready()` waits until the node verified the other workers'
   * (with `redis`: counts them as live peers, seen beating in Redis).
   */
  cluster(options: ClusterOptions = {}): ClusterOptions {
    if (options === null || typeof options !== 'object') throw new TypeError('worker.cluster(options): options must be an object');
    const nodeId = options.nodeId === undefined ? this.nodeId : `${options.nodeId}-w${this.slot}`;
    // The Redis engine finds its peers itself; it only tells the primary which it counts.
    if (options.redis !== undefined) return { ...options, nodeId, [REDIS_DISCOVERY]: this.#primary() };
    if (options.transport !== undefined) return { ...options, nodeId };
    if (options.discovery === 'mdns' || options.discovery === 'dns') {
      throw new TypeError(
        `worker.cluster: discovery '${options.discovery}' does not fit workers on one port: use a static peer list (fixed port per worker: port + slot - 1), your own Discovery object, or cluster.redis`,
      );
    }
    const primary = this.#primary();
    const peers = options.peers ?? [];
    const others: Discovery | undefined =
      typeof options.discovery === 'object' ? options.discovery : peers.length > 0 ? new StaticDiscovery(peers) : undefined;
    const out: ClusterOptions = {
      ...options,
      secret: options.secret ?? this.#secret,
      nodeId,
      discovery: others === undefined ? primary : new CombinedDiscovery([others, primary]),
    };
    delete out.peers;
    // Only this machine's workers: the endpoint stays on loopback.
    if (others === undefined && options.host === undefined && options.interface === undefined && options.advertise === undefined) {
      out.host = '127.0.0.1';
    }
    if (options.port !== undefined && options.port !== 0) out.port = options.port + this.slot - 1;
    return out;
  }

  /** A discovery of the primary's, awaited before the worker says it serves. */
  #primary(): PrimaryDiscovery {
    const primary = new PrimaryDiscovery(this.#channel);
    this.#discoveries.push(primary);
    return primary;
  }

  /** @internal */
  async [DISCOVERIES_SETTLED](): Promise<void> {
    await Promise.all(this.#discoveries.map((d) => d.settled));
  }

  /**
   * The `qos` option of a hub in this worker: a SQLite `file` becomes this slot's own
   * (`data/hr.db` → `data/hr.w2.db`), so the worker that replaces a crashed one opens its
   * file and finds its queue; `redis` (one store shared by every node) and `:memory:` stay.
   */
  qos(options: QosOptions): QosOptions {
    if (options === null || typeof options !== 'object') throw new TypeError('worker.qos(options): options must be an object');
    return options.file === undefined ? options : { ...options, file: this.file(options.file) };
  }

  /** This slot's own file for `path`: `.w<slot>` before the extension (`data/q.db` → `data/q.w1.db`); `:memory:` unchanged. */
  file(path: string): string {
    if (typeof path !== 'string' || path === '') throw new TypeError('worker.file(path): path must be a non-empty string');
    if (path === ':memory:') return path;
    const ext = extname(path);
    const name = `${basename(path, ext)}.w${this.slot}${ext}`;
    const dir = dirname(path);
    return dir === '.' && !path.startsWith('.') ? name : join(dir, name);
  }
}
