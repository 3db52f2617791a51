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
  /** The Java library's name for `partial` (its `PageInfo.timeout`); set by the admin listings. */
  timeout?: boolean;
}

/** Running totals of a hub, for metrics. Local to this node. */
export interface HubStats {
  /**
   * Events written to connections (one per connection reached), whichever path wrote them:
   * sends, `connection.send`, durable messages live, forwarded or replayed. Protocol frames
   * (`connect-finish`, heartbeats) are not counted.
   */
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

/**
 * The same facts under the names of the Java library's `ConnectionDTO`, so that an admin page
 * written for its `connections.json` reads ours. Times are ms since the epoch.
 */
export interface JavaConnectionFields {
  /** = `createdAt` */
  createTime: number;
  /** = `expiresAt`; null for a stream that never expires (`keepaliveZero: 'never'`). */
  expireTime: number | null;
  /** The stream's lifetime in ms: `expiresAt - createdAt`; `0` for one that never expires (as in the Java library). */
  timeout: number;
  /** = `eventsWritten` */
  messageCount: number;
  /** = `requests` (`message/*.do` calls) */
  requestMessageCount: number;
  /** = `uploads` */
  requestUploadCount: number;
  /** = `lastRequestAt` */
  lastRequestTime: number | null;
  /** = `userId` */
  accessUserId: string | null;
  /** = `user` (as `redactUser` shows it) */
  accessUser: unknown;
  /** The shown user's `name`. */
  accessUserName: string | null;
  /** = `ip` */
  requestIp: string;
  /** = `domain` */
  requestDomain: string;
  /** = `attributes` (the connect parameters kept; never `access-token`) */
  httpParameters: Record<string, unknown>;
  /** Sent by the Java client on connect; from `attributes`. */
  clientImportModuleTime: number | null;
  clientInstanceId: string | null;
  clientInstanceTime: number | null;
  totalJSHeapSize: number | null;
  usedJSHeapSize: number | null;
  jsHeapSizeLimit: number | null;
}

/**
 * An entry of `connections.json` by default (`mapToConnectionVO`): the connection, with the
 * user as `redactUser` shows it, plus the Java library's field names.
 */
export type ConnectionView = Omit<ConnectionInfo, 'user'> & { user: RedactedUser } & JavaConnectionFields;

/**
 * An entry of `repositoryMessages.json` by default (`mapToMessageVO`), plus the Java
 * library's field names; token targets appear as hashes.
 */
export interface StoredMessageView extends JavaMessageFields {
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

/**
 * The same facts under the names of the Java library's stored message (`AtLeastOnceMessage`),
 * so that an admin page written for its `repositoryMessages.json` reads ours. A list is null
 * when the message has no target of its kind, as there.
 */
export interface JavaMessageFields {
  /** = `event` */
  eventName: string;
  /** The payload: `data` parsed when it is JSON text, else `data` itself. */
  body: unknown;
  /** `event` for a send to listeners only (`listening`), else null. */
  listenerName: string | null;
  /** The Java bit set of the target kinds: tenant 2, token 4, user 8, listener 16, channel 32. */
  filters: number;
  userIdList: string[] | null;
  tenantIdList: string[] | null;
  /** Hashes of the tokens (as `targets[].keyHash`), never the tokens. */
  accessTokenList: string[] | null;
  channelList: string[] | null;
}
