import type { ConnectionInfo } from './connection-info.js';
import type { SseUser } from './user.js';

/**
 * A browser's connection as request handlers (`onMessage`, `onUpload`) and the endpoints see
 * it, wherever it is held: on this node (`remote: false`, a `Connection`) or on another node
 * of the cluster (`remote: true`, a `RemoteConnection`). Code written against this type never
 * needs to know which.
 */
export interface ConnectionHandle {
  readonly id: string;
  readonly user: SseUser;
  readonly userId: string | undefined;
  /** The access token; for a remote connection, the caller's own token once it matched the connection's. */
  readonly accessToken: string | undefined;
  readonly tenantId: string | undefined;
  readonly channel: string | undefined;
  /** Channels joined at runtime (for a remote connection: when the request arrived). */
  readonly channels: readonly string[];
  /** Events listened to (for a remote connection: when the request arrived). */
  readonly listeners: ReadonlySet<string>;
  /** Held by another node of the cluster. */
  readonly remote: boolean;
  /** Sends one event to this connection only, on whichever node holds it. Resolves to whether it was written. */
  send(event: string, data?: unknown): Promise<boolean>;
  /** A serializable snapshot. */
  toInfo(): ConnectionInfo;
  /** Counts a browser request (`message`) or upload made over this connection (no-op for a remote one). */
  countRequest(kind: 'message' | 'upload'): void;
}
