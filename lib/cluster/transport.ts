import type { ClusterRequest, HelloAnswer } from './messages.js';

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
  on<K extends keyof TransportEvents>(event: K, listener: (...args: TransportEvents[K]) => void): unknown;
  /** Leaves the cluster (goodbye) and stops serving. */
  close(): Promise<void>;
}
