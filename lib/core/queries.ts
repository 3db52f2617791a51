import type { ConnectionInfo } from './connection-info.js';
import type { Key, SseUser } from './user.js';

/** Filter of {@link Hub.getConnections}; every given field must match. */
export interface ConnectionFilter {
  userId?: Key;
  tenantId?: Key;
  accessToken?: string;
  channel?: string;
  clientId?: string;
  /** Only connections listening to this event. */
  listening?: string;
}

/**
 * Every query a node answers from its own connections, by name: its arguments and its answer.
 * The cluster sends the same names to peers and merges their answers.
 */
export interface Queries {
  userIds: { args: []; answer: string[] };
  users: { args: []; answer: SseUser[] };
  accessTokens: { args: []; answer: string[] };
  tenantIds: { args: []; answer: string[] };
  channels: { args: []; answer: string[] };
  connectionCount: { args: []; answer: number };
  connectionIds: { args: []; answer: string[] };
  isOnline: { args: [userId: string]; answer: boolean };
  user: { args: [userId: string]; answer: SseUser | null };
  userIdsListening: { args: [event: string, tenantId: string | null]; answer: string[] };
  connections: { args: [filter: ConnectionFilter]; answer: ConnectionInfo[] };
  connectionById: { args: [id: string]; answer: ConnectionInfo | null };
  /** Members of a channel (fixed `channel` or joined at runtime) by user id: `[userId, connections]`, every user (merged, then capped by the caller). */
  presence: { args: [channel: string]; answer: [userId: string, connections: number][] };
  /** The runtime channels of one connection, or null where it is not held. */
  channelsOf: { args: [connectionId: string]; answer: string[] | null };
}

/** Names of the queries. */
export type QueryName = keyof Queries;
/** The arguments of query `N`. */
export type QueryArgs<N extends QueryName> = Queries[N]['args'];
/** The answer of query `N`. */
export type QueryAnswer<N extends QueryName> = Queries[N]['answer'];
