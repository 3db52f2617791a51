import type { QueryArgs, QueryName } from '../core/queries.js';
import type { WindowPosition } from '../core/window-id.js';
import type { LocalNode } from '../local/local-node.js';
import type { RecoveryTarget, RecoveryWindow, WindowSink, WindowPart } from '../local/recovery-window.js';
import type { ClusterRequest, HelloAnswer } from './messages.js';

/** The recovery window kept for every node in a shared store (the Redis engine's Stream). */
export interface SharedWindowLog {
  /** Takes the store's epoch, or gives it ours when it has none. */
  start(): Promise<void>;
  /** Appends one send. */
  add: WindowSink;
  /** What a stream that saw `from` missed, from every node's sends. */
  since(from: WindowPosition, who: RecoveryTarget): Promise<WindowPart>;
}

/** Answers a request from a verified peer. */
export type RequestHandler = (from: string, request: ClusterRequest) => Promise<unknown>;

/** Events of a transport. */
export interface TransportEvents {
  /** A peer proved it knows the secret and may now receive payloads. */
  'peer-up': [peer: HelloAnswer];
  /** A peer stopped answering (it is then {@link ClusterTransport.unreachable}), or left (mDNS goodbye, removed from the list). */
  'peer-down': [nodeId: string];
  error: [error: unknown];
}

/**
 * Where a directory sends a query: `values`, the peers' answers read from the directory (one
 * per peer, or fewer: they are merged like the peers' own answers), or `ask`, the few peers
 * that hold what the query is about (asked directly, for answers only the holder has live).
 */
export type DirectoryAnswer = { values: unknown[] } | { ask: string[] };

/**
 * What the nodes hold, kept in a shared store (the Redis engine's presence directory), so
 * that queries are answered without asking every node. The cluster consults it for queries
 * when its transport has one.
 */
export interface ClusterDirectory {
  /** Starts writing this node's connections (as they open, close and change). */
  track(local: LocalNode): void;
  /**
   * Answers `name` for the peers `peerIds` (live, not this node), or says which of them to
   * ask. Rejects when the store is unreachable: the caller counts those peers as failed.
   */
  query<N extends QueryName>(name: N, args: QueryArgs<N>, peerIds: string[]): Promise<DirectoryAnswer>;
}

/**
 * How nodes reach each other. The cluster logic only needs these few methods, so it runs
 * the same over HTTP between machines and over an in-process bus in tests.
 */
export interface ClusterTransport {
  readonly nodeId: string;
  /** Starts serving requests with `handler`, and finding peers. */
  start(handler: RequestHandler, self: HelloAnswer): Promise<void>;
  /** Peers that are verified and up. */
  peers(): HelloAnswer[];
  /**
   * Peers that were verified and are still known (in discovery) but do not answer now: their
   * part of any answer is missing until they are back, or gone (goodbye, removed from the
   * list). Not the same node as in {@link ClusterTransport.peers} at the same time.
   */
  unreachable(): HelloAnswer[];
  /** Sends a request to one peer; rejects after `timeoutMs`, on refusal or on a bad answer. */
  request(peerId: string, request: ClusterRequest, timeoutMs: number): Promise<unknown>;
  /**
   * Sends one request to several peers as one message where the transport can (a Redis
   * broadcast channel: one PUBLISH instead of one per peer). One promise per peer, in the
   * order of `peerIds`, each settling like {@link ClusterTransport.request}. Optional.
   */
  broadcast?(peerIds: string[], request: ClusterRequest, timeoutMs: number): Promise<unknown>[];
  /**
   * Sends one request to `peerIds` one-way: the peers run it and answer nothing, nobody
   * waits, failures are dropped (a count-free send). One message for all where the
   * transport can. Optional: without it the cluster asks and ignores the answers.
   */
  notify?(peerIds: string[], request: ClusterRequest): void;
  /**
   * Whether {@link ClusterTransport.broadcast} and {@link ClusterTransport.notify} of a `send`
   * reach every node listening, also those this node does not count as peers at the moment
   * (Redis: one broadcast channel): those write its recovery-window items without answering,
   * as late ones. The cluster then forwards such sends even when it sees no peer. Optional.
   * @internal
   */
  readonly sendsReachAll?: boolean;

  /**
   * A shared store of the recovery window (Redis: a Stream), if the transport offers one. Optional.
   * @internal
   */
  windowLog?(window: RecoveryWindow, report: (err: unknown) => void): SharedWindowLog;
  /** A shared directory of what every node holds, if the transport keeps one (Redis). Optional. */
  readonly directory?: ClusterDirectory;
  // One overload per event rather than a generic over TransportEvents: a class extending
  // `EventEmitter<TransportEvents>` satisfies these under every @types/node (20's and 26's
  // typings of `on` differ, and a generic signature matches only one of them).
  on(event: 'peer-up', listener: (...args: TransportEvents['peer-up']) => void): unknown;
  on(event: 'peer-down', listener: (...args: TransportEvents['peer-down']) => void): unknown;
  on(event: 'error', listener: (...args: TransportEvents['error']) => void): unknown;
  /** Leaves the cluster (goodbye) and stops serving. */
  close(): Promise<void>;
}
