/**
 * The JSON shapes of the admin endpoints (inside the `wrapOkResponse` envelope). Free of
 * runtime dependencies: the dashboard, a browser bundle, imports these types too.
 */
import type { HelloAnswer } from './hello.js';
import type { ConnectionInfo } from './connection-info.js';

/** One page of an admin listing. `pageNum` is 1-based. */
export interface Page<T> {
  pageNum: number;
  pageSize: number;
  total: number;
  list: T[];
  /** In a cluster: a node did not answer, its part is missing. */
  partial?: boolean;
}

/** Running totals of a hub, for metrics. Local to this node. */
export interface HubStats {
  /** Events written to connections by sends (one per connection reached). */
  eventsSent: number;
  /** Targeted connections a send could not write to (closed, or just closed as slow). */
  eventsFailed: number;
  /** Bytes of those events. */
  bytesSent: number;
  connects: number;
  disconnects: number;
  /** Connections closed for not reading (write buffer over `writeBufferLimit`). */
  slowCloses: number;
}

/** `stats.json`: live figures for the dashboard. */
export interface AdminStats {
  name: string;
  /** Server clock (ms since epoch) when the figures were taken. */
  time: number;
  /** Distinct online users, cluster-wide. */
  users: number;
  /** Open streams, cluster-wide. */
  connections: number;
  partial: boolean;
  /** This node's running totals, and its own open streams. */
  local: HubStats & { connections: number };
  qos: { pending: number } | null;
  cluster: { nodeId: string; peers: HelloAnswer[] } | null;
}

/** What admin listings show of a user by default (`redactUser`): never tokens or other fields. */
export interface RedactedUser {
  id: unknown;
  name: unknown;
  tenantId: unknown;
  [key: string]: unknown;
}

/** An entry of `connections.json`: the connection, with the user as `redactUser` shows it. */
export type ConnectionView = Omit<ConnectionInfo, 'user'> & { user: RedactedUser };

/** An entry of `repositoryMessages.json`; token targets appear as hashes. */
export interface StoredMessageView {
  id: string;
  kind: string;
  event: string;
  /** The payload as sent (strings verbatim, else JSON text). */
  data: string;
  listening: boolean;
  createdAt: number;
  expiresAt: number;
  targets: ({ kind: string; key: string } | { kind: 'token'; keyHash: string })[];
}
