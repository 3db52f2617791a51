import type { SseUser } from './user.js';

/** A serializable snapshot of a connection, as queries and admin listings return it. */
export interface ConnectionInfo {
  id: string;
  userId?: string;
  tenantId?: string;
  channel?: string;
  /** Channels joined at runtime (`join.do`, `hub.joinChannel`), when any. */
  channels?: string[];
  user: SseUser;
  /** First 12 hex digits of SHA-256 of the access token: lets you correlate, never reveals it. */
  accessTokenHash?: string;
  listeners: string[];
  clientId?: string;
  clientVersion?: string;
  screen?: string;
  locationHref?: string;
  accessTime?: number;
  ip: string;
  domain: string;
  userAgent: string;
  createdAt: number;
  /** When the server ends the stream (ms since the epoch); `Infinity` (null once sent between nodes) for one that never expires (`keepaliveZero: 'never'`). */
  expiresAt: number;
  sessionDuration?: number;
  eventsWritten: number;
  requests: number;
  uploads: number;
  lastRequestAt?: number;
  /** Bytes queued in user space, not yet taken by the kernel. */
  bufferedAmount: number;
  attributes: Record<string, unknown>;
}
