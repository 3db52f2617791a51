import { SseRedisUnavailableError } from '../core/errors.js';
import type { ConnectionFilter, QueryArgs, QueryName } from '../core/queries.js';
import type { SendTargetKind } from '../core/targets.js';
import { keyOf, type SseUser } from '../core/user.js';
import type { Connection } from '../local/connection.js';
import type { LocalNode } from '../local/local-node.js';
import { redisFailure, type RedisClient } from '../redis/redis-connection.js';
import type { ClusterDirectory, DirectoryAnswer } from './transport.js';

/** What the directory keeps of one connection: enough for `userIdsListening`. */
interface ConnRecord {
  u?: string;
  t?: string;
  l: string[];
}

/** The field names of a node's keys; one place, so that writing, reading and deleting agree. */
const PARTS = ['conn', 'user', 'token', 'tenant', 'channel', 'ok'] as const;
type Part = (typeof PARTS)[number];

/**
 * How long changes gather before they are written: under a reconnect storm one flush carries
 * the opens of many ticks in a few commands; a query elsewhere sees a change this much later.
 */
const FLUSH_MS = 5;

/** Largest number of fields written by one HSET / SADD in a full rewrite. */
const CHUNK = 1000;

function recordOf(conn: Connection): string {
  const record: ConnRecord = { l: [...conn.listeners] };
  if (conn.userId !== undefined) record.u = conn.userId;
  if (conn.tenantId !== undefined) record.t = conn.tenantId;
  return JSON.stringify(record);
}

function parse<T>(raw: unknown): T | undefined {
  if (typeof raw !== 'string') return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}

/** Calls `write` with slices of `items` of at most {@link CHUNK} entries of `width` items each. */
function chunked(items: string[], width: number, write: (part: string[]) => void): void {
  for (let i = 0; i < items.length; i += CHUNK * width) write(items.slice(i, i + CHUNK * width));
}

function isEmpty(conns: Iterable<Connection>): boolean {
  for (const _ of conns) return false;
  return true;
}

/**
 * The presence directory of the Redis cluster engine: which node holds which connection,
 * user, access token, tenant and channel. Each node writes its own keys (hash-tagged by node
 * id, so that they share a slot on a Redis Cluster) as its connections open, close and change
 * listeners, gathered for a few ms and written as one pipeline with one command per key, so
 * that a reconnect storm costs a few commands and round trips, not several per stream. The keys expire unless the node's beat renews them, and
 * the peers delete a dead node's keys when its beat expires; readers only ever read the
 * keys of nodes that are up, so a dead node's entries leave every answer at once.
 *
 * Any failed write (Redis down, a timeout) marks the directory out of sync, and the next
 * successful beat rewrites this node's keys whole from its live connections: no write is
 * retried from memory, so memory stays bounded by the connections themselves.
 */
export class RedisDirectory implements ClusterDirectory {
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #keyTtlMs: number;
  readonly #onError: (err: unknown) => void;
  #local: LocalNode | undefined;
  #nodeId: string | undefined;
  /** Connections opened or changed since the last flush, and those closed since. */
  #changed = new Map<string, Connection>();
  #gone = new Map<string, Connection>();
  #scheduled = false;
  /** This node's keys hold all its connections (else the next beat rewrites them). */
  #synced = false;
  #closed = false;

  /** @internal Built by the Redis transport, which shares its client. */
  constructor(client: RedisClient, prefix: string, keyTtlMs: number, onError: (err: unknown) => void) {
    this.#client = client;
    this.#prefix = prefix;
    this.#keyTtlMs = keyTtlMs;
    this.#onError = onError;
  }

  /** The keys a node writes. */
  keysOf(nodeId: string): string[] {
    return PARTS.map((part) => this.#key(nodeId, part));
  }

  #key(nodeId: string, part: Part): string {
    return `${this.#prefix}:dir:{${nodeId}}:${part}`;
  }

  track(local: LocalNode): void {
    this.#local = local;
    local.on('connect', (conn) => this.#mark(conn, false));
    local.on('disconnect', (conn) => this.#mark(conn, true));
    local.on('listeners-change', (change) => this.#mark(change.connection, false));
  }

  #mark(conn: Connection, gone: boolean): void {
    if (this.#closed || !this.#synced) return;
    if (gone) {
      this.#changed.delete(conn.id);
      this.#gone.set(conn.id, conn);
    } else {
      this.#changed.set(conn.id, conn);
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => this.#flush(), FLUSH_MS);
  }

  /** Writes what changed in this tick, in one pipeline; a failure leaves the rewrite to the next beat. */
  #flush(): void {
    this.#scheduled = false;
    const changed = this.#changed;
    const gone = this.#gone;
    this.#changed = new Map();
    this.#gone = new Map();
    const local = this.#local;
    const nodeId = this.#nodeId;
    if (!this.#synced || this.#closed || local === undefined || nodeId === undefined) return;
    const key = (part: Part): string => this.#key(nodeId, part);
    const conns: string[] = [];
    const dropped: string[] = [];
    // The user object a node answers is its oldest connection's (as the local query does).
    const users = new Map<string, string>();
    const droppedUsers: string[] = [];
    const add = { token: new Set<string>(), tenant: new Set<string>(), channel: new Set<string>() };
    const remove = { token: new Set<string>(), tenant: new Set<string>(), channel: new Set<string>() };
    const firstOf = (userId: string): Connection | undefined => {
      for (const c of local.targets('user', [userId])) return c;
      return undefined;
    };
    for (const conn of changed.values()) {
      if (conn.closed) continue;
      conns.push(conn.id, recordOf(conn));
      if (conn.userId !== undefined && firstOf(conn.userId) === conn) users.set(conn.userId, JSON.stringify(conn.user));
      if (conn.accessToken !== undefined) add.token.add(conn.accessToken);
      if (conn.tenantId !== undefined) add.tenant.add(conn.tenantId);
      if (conn.channel !== undefined) add.channel.add(conn.channel);
    }
    const none = (kind: SendTargetKind, value: string): boolean => isEmpty(local.targets(kind, [value]));
    for (const conn of gone.values()) {
      dropped.push(conn.id);
      // A key leaves only with the last connection of it on this node.
      if (conn.userId !== undefined) {
        const first = firstOf(conn.userId);
        if (first === undefined) droppedUsers.push(conn.userId);
        else users.set(conn.userId, JSON.stringify(first.user));
      }
      if (conn.accessToken !== undefined && none('token', conn.accessToken)) remove.token.add(conn.accessToken);
      if (conn.tenantId !== undefined && none('tenant', conn.tenantId)) remove.tenant.add(conn.tenantId);
      if (conn.channel !== undefined && none('channel', conn.channel)) remove.channel.add(conn.channel);
    }
    // One command per key and kind (in chunks), all in one pipeline: a storm costs a few round trips.
    const pipeline = this.#client.pipeline();
    chunked(conns, 2, (part) => pipeline.hset(key('conn'), ...part));
    chunked(dropped, 1, (part) => pipeline.hdel(key('conn'), ...part));
    chunked([...users].flat(), 2, (part) => pipeline.hset(key('user'), ...part));
    chunked(droppedUsers, 1, (part) => pipeline.hdel(key('user'), ...part));
    for (const kind of ['token', 'tenant', 'channel'] as const) {
      chunked([...add[kind]], 1, (part) => pipeline.sadd(key(kind), ...part));
      chunked([...remove[kind]], 1, (part) => pipeline.srem(key(kind), ...part));
    }
    if (pipeline.length === 0) return;
    pipeline.exec().then(
      (results) => {
        const err = results === null ? new Error('directory write aborted') : results.find(([e]) => e !== null)?.[0];
        if (err !== undefined) this.#failed(err);
      },
      (err: unknown) => this.#failed(err),
    );
  }

  /** A write failed: rewrite on the next beat; report what is not Redis being unreachable (that the beat reports). */
  #failed(err: unknown): void {
    this.#synced = false;
    if (!(redisFailure(err, 'directory write') instanceof SseRedisUnavailableError)) this.#onError(err);
  }

  /**
   * Called on every beat: renews this node's keys, and rewrites them whole when they are out
   * of sync or gone (first beat, Redis restarted, this node was taken for dead meanwhile).
   */
  async refresh(nodeId: string): Promise<void> {
    this.#nodeId = nodeId;
    if (this.#closed || this.#local === undefined) return;
    if (this.#synced) {
      const multi = this.#client.multi().exists(this.#key(nodeId, 'ok'));
      for (const key of this.keysOf(nodeId)) multi.pexpire(key, this.#keyTtlMs);
      const results = await multi.exec();
      if (results !== null && results[0]![0] === null && results[0]![1] === 1) return;
      this.#synced = false;
    }
    await this.#rewrite(nodeId, this.#local);
  }

  /** Replaces this node's keys with its live connections, in one transaction. */
  async #rewrite(nodeId: string, local: LocalNode): Promise<void> {
    const key = (part: Part): string => this.#key(nodeId, part);
    const conns: string[] = [];
    const users = new Map<string, string>();
    const sets: Record<'token' | 'tenant' | 'channel', Set<string>> = { token: new Set(), tenant: new Set(), channel: new Set() };
    for (const conn of local.connections()) {
      conns.push(conn.id, recordOf(conn));
      if (conn.userId !== undefined && !users.has(conn.userId)) users.set(conn.userId, JSON.stringify(conn.user));
      if (conn.accessToken !== undefined) sets.token.add(conn.accessToken);
      if (conn.tenantId !== undefined) sets.tenant.add(conn.tenantId);
      if (conn.channel !== undefined) sets.channel.add(conn.channel);
    }
    const multi = this.#client.multi().del(...this.keysOf(nodeId));
    chunked(conns, 2, (part) => multi.hset(key('conn'), ...part));
    chunked([...users].flat(), 2, (part) => multi.hset(key('user'), ...part));
    for (const part of ['token', 'tenant', 'channel'] as const) chunked([...sets[part]], 1, (members) => multi.sadd(key(part), ...members));
    multi.set(key('ok'), '1');
    for (const k of this.keysOf(nodeId)) multi.pexpire(k, this.#keyTtlMs);
    // Changes from now on are written after this transaction, on the same connection: in order.
    this.#changed.clear();
    this.#gone.clear();
    this.#synced = true;
    try {
      const results = await multi.exec();
      if (results === null || results.some(([err]) => err !== null)) throw new Error('directory rewrite failed');
    } catch (err) {
      this.#synced = false;
      throw err;
    }
  }

  /** Redis was lost: what was written meanwhile may be missing, so rewrite when it is back. */
  lost(): void {
    this.#synced = false;
  }

  /**
   * Rewrites this node's entries on the next beat. For a change of a connection's keys that is
   * not an open, a close or a listener change (which are followed by themselves).
   */
  resync(): void {
    this.#synced = false;
  }

  close(): void {
    this.#closed = true;
    this.#changed.clear();
    this.#gone.clear();
  }

  async query<N extends QueryName>(name: N, args: QueryArgs<N>, peerIds: string[]): Promise<DirectoryAnswer> {
    try {
      return await this.#query(name, args as unknown[], peerIds);
    } catch (err) {
      throw redisFailure(err, `directory query ${name}`);
    }
  }

  async #query(name: QueryName, args: unknown[], peerIds: string[]): Promise<DirectoryAnswer> {
    const c = this.#client;
    const each = <T>(read: (nodeId: string) => Promise<T>): Promise<T[]> => Promise.all(peerIds.map(read));
    const k = this.#key.bind(this);
    switch (name) {
      case 'isOnline':
        return { values: (await each((n) => c.hexists(k(n, 'user'), String(args[0])))).map((v) => v === 1) };
      case 'user': {
        const raws = await each((n) => c.hget(k(n, 'user'), String(args[0])));
        return { values: raws.map((raw) => parse<SseUser>(raw) ?? null) };
      }
      case 'userIds':
        return { values: await each((n) => c.hkeys(k(n, 'user'))) };
      case 'users': {
        const lists = await each((n) => c.hvals(k(n, 'user')));
        return { values: lists.map((raws) => raws.map((raw) => parse<SseUser>(raw)).filter((u): u is SseUser => u !== undefined)) };
      }
      case 'accessTokens':
        return { values: await each((n) => c.smembers(k(n, 'token'))) };
      case 'tenantIds':
        return { values: await each((n) => c.smembers(k(n, 'tenant'))) };
      case 'channels':
        return { values: await each((n) => c.smembers(k(n, 'channel'))) };
      case 'connectionCount':
        return { values: await each((n) => c.hlen(k(n, 'conn'))) };
      case 'connectionIds':
        return { values: await each((n) => c.hkeys(k(n, 'conn'))) };
      case 'userIdsListening': {
        const [event, tenant] = args as [string, string | null];
        const lists = await each((n) => c.hvals(k(n, 'conn')));
        return {
          values: lists.map((raws) => {
            const ids = new Set<string>();
            for (const raw of raws) {
              const r = parse<ConnRecord>(raw);
              if (r?.u !== undefined && Array.isArray(r.l) && r.l.includes(event) && (tenant === null || r.t === tenant)) ids.add(r.u);
            }
            return [...ids];
          }),
        };
      }
      // Listings carry live counters only the holder knows: ask the holders, and only them.
      case 'connectionById': {
        const held = await each((n) => c.hexists(k(n, 'conn'), String(args[0])));
        return { ask: peerIds.filter((_, i) => held[i] === 1) };
      }
      case 'connections': {
        const filter = (args[0] ?? {}) as ConnectionFilter;
        const userId = keyOf(filter.userId);
        const tenantId = keyOf(filter.tenantId);
        const token = keyOf(filter.accessToken);
        const holds = await each(async (n) => {
          const checks: Promise<number>[] = [c.hlen(k(n, 'conn'))];
          if (userId !== undefined) checks.push(c.hexists(k(n, 'user'), userId));
          if (token !== undefined) checks.push(c.sismember(k(n, 'token'), token));
          if (tenantId !== undefined) checks.push(c.sismember(k(n, 'tenant'), tenantId));
          if (filter.channel !== undefined) checks.push(c.sismember(k(n, 'channel'), filter.channel));
          return (await Promise.all(checks)).every((v) => v > 0);
        });
        return { ask: peerIds.filter((_, i) => holds[i]) };
      }
      // A query the directory does not keep (one added later): every peer is asked, as without it.
      default:
        return { ask: peerIds };
    }
  }
}
