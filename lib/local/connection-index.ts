import type { ConnectionFilter, QueryAnswer, QueryArgs, QueryName, Queries } from '../core/queries.js';
import type { SendTargetKind } from '../core/targets.js';
import { keyOf, type SseUser } from '../core/user.js';
import type { Connection } from './connection.js';
import { KeyIndex } from './key-index.js';

/** One answering function per query, typed by the query map. */
type QueryHandlers = { [N in QueryName]: (...args: Queries[N]['args']) => Queries[N]['answer'] };

/**
 * The live connections of one node, indexed by id, user id, access token, tenant, channel,
 * listened event and browser (clientId). Answers which connections a target reaches and the
 * local side of every query; the hub owns the lifecycle and the cluster the merging.
 */
export class ConnectionIndex {
  readonly #byId = new Map<string, Connection>();
  readonly #byUser = new KeyIndex<Connection>();
  readonly #byToken = new KeyIndex<Connection>();
  readonly #byTenant = new KeyIndex<Connection>();
  readonly #byChannel = new KeyIndex<Connection>();
  readonly #byListener = new KeyIndex<Connection>();
  readonly #byClient = new KeyIndex<Connection>();

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): Connection | undefined {
    return this.#byId.get(id);
  }

  has(conn: Connection): boolean {
    return this.#byId.get(conn.id) === conn;
  }

  values(): IterableIterator<Connection> {
    return this.#byId.values();
  }

  /** Connections of one user id right now. */
  countOfUser(userId: string): number {
    return this.#byUser.count(userId);
  }

  add(conn: Connection): void {
    this.#byId.set(conn.id, conn);
    this.#byUser.add(conn.userId, conn);
    this.#byToken.add(conn.accessToken, conn);
    this.#byTenant.add(conn.tenantId, conn);
    for (const channel of conn.memberships()) this.#byChannel.add(channel, conn);
    for (const name of conn.listeners) this.#byListener.add(name, conn);
    this.#byClient.add(conn.clientKey, conn);
  }

  delete(conn: Connection): void {
    this.#byId.delete(conn.id);
    this.#byUser.delete(conn.userId, conn);
    this.#byToken.delete(conn.accessToken, conn);
    this.#byTenant.delete(conn.tenantId, conn);
    for (const channel of conn.memberships()) this.#byChannel.delete(channel, conn);
    for (const name of conn.listeners) this.#byListener.delete(name, conn);
    this.#byClient.delete(conn.clientKey, conn);
  }

  /** Files a connection under a listened event (the connection's own set is the caller's). */
  addListener(conn: Connection, name: string): void {
    this.#byListener.add(name, conn);
  }

  deleteListener(conn: Connection, name: string): void {
    this.#byListener.delete(name, conn);
  }

  /** Files a connection under a channel it just became a member of (its own record is the caller's). */
  addChannel(conn: Connection, channel: string): void {
    this.#byChannel.add(channel, conn);
  }

  deleteChannel(conn: Connection, channel: string): void {
    this.#byChannel.delete(channel, conn);
  }

  /** The live connections of one user id (a new array). */
  ofUser(userId: string): Connection[] {
    return this.#byUser.list(userId);
  }

  /** Streams of the same browser (user + clientId + domain + tenant), oldest first. */
  siblings(conn: Connection): Connection[] {
    const key = conn.clientKey;
    return key === undefined ? [] : this.siblingsByKey(key);
  }

  /** Streams under one browser key (`Connection.clientKey`), oldest first. */
  siblingsByKey(key: string): Connection[] {
    return this.#byClient.list(key);
  }

  /** The connections a target of this kind and keys reaches, each once. */
  targets(kind: SendTargetKind, keys: string[]): Iterable<Connection> {
    switch (kind) {
      case 'all':
        return this.#byId.values();
      case 'user':
        return collect(this.#byUser, keys);
      case 'token':
        return collect(this.#byToken, keys);
      case 'tenant':
        return collect(this.#byTenant, keys);
      case 'channel':
        return collect(this.#byChannel, keys);
      case 'connection': {
        // A Set: an id given twice still reaches its connection once.
        const conns = new Set<Connection>();
        for (const id of keys) {
          const conn = this.#byId.get(id);
          if (conn !== undefined) conns.add(conn);
        }
        return conns;
      }
    }
  }

  /** Answers a query from these connections only (the cluster merges the nodes' answers). */
  query<N extends QueryName>(name: N, args: QueryArgs<N>): QueryAnswer<N> {
    const handler = this.#queries[name] as (...a: QueryArgs<N>) => QueryAnswer<N>;
    return handler(...args);
  }

  readonly #queries: QueryHandlers = {
    userIds: () => [...this.#byUser.keys()],
    users: () => this.#usersOf(this.#byUser.keys()),
    accessTokens: () => [...this.#byToken.keys()],
    tenantIds: () => [...this.#byTenant.keys()],
    channels: () => [...this.#byChannel.keys()],
    connectionCount: () => this.#byId.size,
    connectionIds: () => [...this.#byId.keys()],
    isOnline: (userId) => this.#byUser.has(String(userId)),
    user: (userId) => this.#usersOf([String(userId)])[0] ?? null,
    userIdsListening: (event, tenant) => {
      const ids = new Set<string>();
      for (const conn of this.#byListener.get(event) ?? []) {
        if (conn.userId !== undefined && (tenant === null || conn.tenantId === tenant)) ids.add(conn.userId);
      }
      return [...ids];
    },
    connections: (filter) => this.#filter(filter ?? {}).map((c) => c.toInfo()),
    connectionById: (id) => this.#byId.get(String(id))?.toInfo() ?? null,
    presence: (channel) => {
      const counts = new Map<string, number>();
      for (const conn of this.#byChannel.get(String(channel)) ?? []) {
        if (conn.userId !== undefined) counts.set(conn.userId, (counts.get(conn.userId) ?? 0) + 1);
      }
      return [...counts];
    },
    channelsOf: (id) => this.#byId.get(String(id))?.channels ?? null,
  };

  /** One user object per user id: the first connection's. */
  #usersOf(userIds: Iterable<string>): SseUser[] {
    const users: SseUser[] = [];
    for (const id of userIds) {
      for (const conn of this.#byUser.get(id) ?? []) {
        users.push(conn.user);
        break;
      }
    }
    return users;
  }

  #filter(filter: ConnectionFilter): Connection[] {
    const userId = keyOf(filter.userId);
    const tenantId = keyOf(filter.tenantId);
    const token = keyOf(filter.accessToken);
    // Start from the narrowest index given, then check the remaining fields.
    const source: Iterable<Connection> =
      userId !== undefined
        ? (this.#byUser.get(userId) ?? [])
        : token !== undefined
          ? (this.#byToken.get(token) ?? [])
          : filter.channel !== undefined
            ? (this.#byChannel.get(filter.channel) ?? [])
            : tenantId !== undefined
              ? (this.#byTenant.get(tenantId) ?? [])
              : filter.listening !== undefined
                ? (this.#byListener.get(filter.listening) ?? [])
                : this.#byId.values();
    const out: Connection[] = [];
    for (const c of source) {
      if (userId !== undefined && c.userId !== userId) continue;
      if (tenantId !== undefined && c.tenantId !== tenantId) continue;
      if (token !== undefined && c.accessToken !== token) continue;
      if (filter.channel !== undefined && !c.memberOf(filter.channel)) continue;
      if (filter.clientId !== undefined && c.client.clientId !== filter.clientId) continue;
      if (filter.listening !== undefined && !c.listeners.has(filter.listening)) continue;
      out.push(c);
    }
    return out;
  }
}

/** Distinct connections under any of the keys: one send reaches each connection once. */
function collect(index: KeyIndex<Connection>, keys: string[]): Iterable<Connection> {
  if (keys.length === 1) return index.list(keys[0]!);
  const out = new Set<Connection>();
  for (const key of keys) for (const conn of index.get(key) ?? []) out.add(conn);
  return out;
}
