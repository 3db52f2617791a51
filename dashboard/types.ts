/** The shapes of the admin endpoints' answers (inside the `{success, code, data}` envelope). */

/** One page of an admin listing (`users.json`, `connections.json`, `repositoryMessages.json`). */
export interface Page<T> {
  pageNum: number;
  pageSize: number;
  total: number;
  list: T[];
  /** In a cluster: a node did not answer, its part is missing. */
  partial?: boolean;
}

/** `stats.json` */
export interface Stats {
  name: string;
  /** Server clock (ms since epoch) when the figures were taken. */
  time: number;
  users: number;
  connections: number;
  partial?: boolean;
  /** This node's running totals. */
  local: {
    connections: number;
    eventsSent: number;
    eventsFailed: number;
    bytesSent: number;
    connects: number;
    disconnects: number;
    slowCloses: number;
  };
  qos: { pending: number } | null;
  cluster: { nodeId: string; peers: Peer[] } | null;
}

export interface Peer {
  nodeId: string;
  group: string;
  qosTag?: string;
  protocol: number;
}

/** A user as the app's `redactUser` shows it (by default `{id, name, tenantId}`). */
export interface UserView {
  id?: string | number | null;
  name?: string | null;
  tenantId?: string | number | null;
  [key: string]: unknown;
}

/** An entry of `connections.json`. */
export interface ConnectionView {
  id: string;
  userId?: string;
  tenantId?: string;
  channel?: string;
  user: UserView;
  listeners: string[];
  clientId?: string;
  clientVersion?: string;
  locationHref?: string;
  ip: string;
  domain: string;
  userAgent: string;
  createdAt: number;
  eventsWritten: number;
  requests: number;
  bufferedAmount: number;
}

/** An entry of `repositoryMessages.json`. */
export interface StoredMessageView {
  id: string;
  kind: string;
  event: string;
  data: unknown;
  createdAt: number;
  expiresAt?: number | null;
  targets: { kind: string; key?: string; keyHash?: string }[];
}
