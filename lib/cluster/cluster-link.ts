import type { HelloAnswer } from '../core/hello.js';
import type { ClusterRequest, SendItem } from './messages.js';

/** The answers of the peers to one fan-out, and which peers failed to answer. */
export interface FanOut<T> {
  values: T[];
  /**
   * Node ids whose part is missing: the result is partial. A peer that failed or timed out,
   * a known peer that is down (not asked), or one that got a send after its deadline.
   */
  failed: string[];
}

/** One kind of request of the union in messages.ts. */
export type RequestOf<K extends ClusterRequest['type']> = Extract<ClusterRequest, { type: K }>;

/** A send item that carries a durable message's id (its owner's tag ends it). */
export type DurableItem = SendItem & { id: string; kind: Exclude<SendItem['kind'], 'connection'> };

/**
 * The small interface a module of the cluster works over (cluster/durable-cluster.ts: what
 * durable delivery needs of the peers). The module registers the request kinds it answers
 * and sends through the cluster's fan-out, so that the cluster itself knows nothing of what
 * the module does (as socket.io's cluster adapter serves the adapters built on it).
 */
export interface ClusterLink {
  readonly nodeId: string;
  /** True once the cluster closed: nothing more should be asked. */
  readonly closed: boolean;
  /** Verified peers that are up. */
  peers(): HelloAnswer[];
  /** One request to one peer, within `timeoutMs` (default the cluster's timeout); rejects when it fails or times out. */
  request(nodeId: string, request: ClusterRequest, timeoutMs?: number): Promise<unknown>;
  /** A send to every peer, coalesced per tick with the others (see `Cluster.send`). */
  send(item: SendItem): Promise<FanOut<number>>;
  /** Reports each known peer that is down (and matches `which`) as failing `operation` (`peer-error`); answers their ids. */
  reportDown(operation: string, which: (peer: HelloAnswer) => boolean): string[];
  /** Reports a peer's failed part of `operation` (`peer-error`). */
  peerError(nodeId: string, operation: string, error: unknown): void;
  /** Reports a failure of this node (`error`). */
  error(error: unknown): void;
  /** Answers requests of kind `type` with `handler` (one handler per kind, registered before the cluster starts). */
  handle<K extends ClusterRequest['type']>(type: K, handler: (from: string, request: RequestOf<K>) => unknown): void;
  /** Writes the durable items of peers' sends with `deliver` instead of as plain sends; answers the count reached. */
  deliverDurable(deliver: (item: DurableItem) => number): void;
  /** Sees each ordinary send of a peer that carries a recovery-window id, once written here with `frame`. */
  watchWindowItems(watch: (item: SendItem, frame: Buffer) => void): void;
  /** Hears of each of this node's ordinary sends with a recovery-window id that peers were asked for and failed (timed out, refused): their ids. */
  watchWindowMisses(watch: (item: SendItem, peers: string[]) => void): void;
  /** Adds to what this node tells its peers in its `hello` (before the cluster starts). */
  announce(fields: Pick<HelloAnswer, 'qosTag' | 'qosCopies' | 'qosPullMe' | 'windowTook'>): void;
  /** Calls `up` when a verified peer comes up, `down` when one goes down (before the hub's own listeners). */
  onPeers(up: (peer: HelloAnswer) => void, down: (nodeId: string) => void): void;
}
