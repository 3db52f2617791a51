import { positive, positiveFinite } from '../core/option-checks.js';
import type { ShapesOf } from '../core/option-shape.js';
import { assertRedisSource } from '../redis/redis-connection.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, type RedisSource } from '../redis/redis-source.js';
import type { QosStore } from './qos-store.js';

/**
 * Options of durable delivery (`qos` option of the plugin or hub). Exactly one of `file`
 * (SQLite, one store per process), `redis` (one store shared by every node on the same
 * Redis and `redisPrefix`) and `store` (your own) is required.
 */
export interface QosOptions {
  /**
   * Bring your own store: any object that keeps the {@link QosStore} contract (e.g. over the
   * app's own database; example/postgres-qos-store.ts keeps messages in PostgreSQL). Check it
   * with `storeContract` from `koa-sse-server/testing`. The hub closes it when it closes. A
   * shared store (`shared: true`) checks its own caps: give it the same numbers as
   * `maxPendingPerTarget` and `maxMessages`. See docs/durable-delivery.md, "Bring your own store".
   */
  store?: QosStore;
  /** SQLite database file (its folder is created on demand), or `:memory:` for tests. */
  file?: string;
  /**
   * Keep the messages in Redis instead: a `redis://` URL or an ioredis client (Sentinel,
   * Cluster). Every node on the same Redis and `redisPrefix` shares one store: any node drains
   * a reconnecting user's queue, an ack through any node removes the message, and losing an
   * app node loses nothing. How durable a committed send is depends on Redis's persistence
   * (docs/redis.md, "How durable is a committed send?"): with `appendonly yes` + `appendfsync everysec` a Redis crash
   * loses up to about a second of sends. When Redis is away, sends reject with
   * `ERR_SSE_REDIS_UNAVAILABLE` at once (or after `redisCommandTimeoutMs` if it stalls).
   */
  redis?: RedisSource;
  /**
   * Prefix of every Redis key of the store (wrapped in `{}` so that Redis Cluster keeps them
   * in one slot). With `redis`, this or the hub's `name` must be given (else a TypeError at
   * start): two apps on one Redis that kept the default name would share one store and drain
   * each other's queues. Default `sse:<hub name>`.
   */
  redisPrefix?: string;
  /** Longest a Redis command may take before the call fails with `ERR_SSE_REDIS_UNAVAILABLE`, in ms (only with a `redis` URL). Default `2000`. */
  redisCommandTimeoutMs?: number;
  /** Default time a message is kept, in ms (positive and finite): pending for queues, retained for logs. Default 7 days. */
  ttlMs?: number;
  /**
   * A connection that opens without `Last-Event-ID` (a new tab or device, not a reconnect) also
   * gets the tenant, channel and "all" messages stored in the last this-many ms, each once, as a
   * reconnect resumes them: durable messages to a group reach the group's connections that open
   * later (the Java library hands such a message to the next matching connection only, and then
   * forgets it). `Infinity`: everything retained (`ttlMs`). Default `0`: only a reconnect's
   * `Last-Event-ID` resumes the logs, so that a new tab does not show days-old group news again.
   */
  newConnectionLogMs?: number;
  /** SQLite `synchronous`: `NORMAL` survives a process crash, `FULL` also a power loss. Default `NORMAL`. */
  synchronous?: 'NORMAL' | 'FULL';
  /** Most pending messages per user or token; a send beyond it fails with `ERR_SSE_QUEUE_FULL`. Default `10000`. */
  maxPendingPerTarget?: number;
  /** Most stored messages in total. Default `1000000`. */
  maxMessages?: number;
  /** Largest serialized payload of a durable message, in bytes. Default 256 KiB. */
  maxMessageBytes?: number;
  /**
   * How often expired messages are removed (and `qos-expired` fired), in ms. With Redis every
   * node runs it; each expired message is removed, and reported, by one node only. Default `60000`.
   */
  expiryIntervalMs?: number;
  /**
   * The file belongs to one process. How long a second process waits for it at start (e.g.
   * a rolling restart whose old process is still closing) before failing with
   * `ERR_SSE_STORE_LOCKED`, in ms. The wait blocks start-up, not requests. Default `10000`
   * (closing 15,000 streams took up to 2.6 s in the storm benchmark, more under load).
   */
  lockTimeoutMs?: number;
  /**
   * Run SQLite's `quick_check` when the store opens, so that a damaged file fails at start
   * with `ERR_SSE_STORE_CORRUPT` instead of on every ack later. Linear in the file's size
   * (about a second per GB). Default `true`.
   */
  integrityCheck?: boolean;
  /**
   * Copies of each durable message on other nodes of a LAN cluster (no broker), so that losing
   * a node (its disk too) loses no message whose send resolved. Only a store of one process
   * (`file`, SQLite) is replicated: the copies live in the other nodes' SQLite files. A shared
   * store (`redis`, or a `store` with `shared: true`) and a store of your own ignore it (their
   * database is where copies are kept; the result's `copies` is 1). See
   * docs/durable-delivery.md, "Copies on a LAN cluster".
   */
  replication?: QosReplicationOptions;
}

/** How durable messages are copied to other nodes of a LAN cluster (`qos.replication`). */
export interface QosReplicationOptions {
  /**
   * Nodes that hold a message committed before its send resolves: its owner (the node that
   * took it) and `copies - 1` other live nodes with a SQLite store, chosen by rendezvous
   * hashing of the target (every node agrees; one target's messages go to the same replica).
   * Fewer live nodes: see `whenShort`. `1`: no copies (a message lives only on its owner).
   * Default `2`.
   */
  copies?: number;
  /**
   * Fewer than `copies` nodes hold the message (too few live nodes with a store, or a replica
   * did not commit within `timeoutMs`). `'degrade'`: the send resolves anyway, its `copies`
   * saying how many hold it. `'fail'`: it rejects with `ERR_SSE_TOO_FEW_COPIES`
   * ({@link SseTooFewCopiesError}) and nothing is stored: refused before anything is
   * committed when too few nodes are up, else deleted from the owner and the replicas that
   * did commit, and written to no connection. Default `'degrade'`.
   */
  whenShort?: 'degrade' | 'fail';
  /**
   * A node gone (down, or unreachable) longer than this has its messages copied again: the
   * holders of its copies copy them to another live node, and owners copy their messages
   * to a replica that is up, so that a second loss does not lose them. In ms. Default `30000`.
   */
  rereplicateAfterMs?: number;
  /** How long a send waits for a replica's commit before counting that copy missing, in ms. Default: the cluster's `timeoutMs`. */
  timeoutMs?: number;
}

/** `qos.replication` with every default applied. */
export interface ResolvedReplication {
  copies: number;
  whenShort: 'degrade' | 'fail';
  rereplicateAfterMs: number;
  timeoutMs: number | undefined;
}

/** Applies the defaults of `qos.replication` and checks its values; a TypeError names a bad one. */
export function resolveReplication(value: QosReplicationOptions | undefined): ResolvedReplication {
  const r = value ?? {};
  if (r === null || typeof r !== 'object') throw new TypeError('qos.replication must be an object');
  const copies = r.copies ?? 2;
  if (!Number.isInteger(copies) || copies < 1 || copies > 16)
    throw new TypeError(`qos.replication.copies must be an integer from 1 to 16, got ${String(copies)}`);
  const whenShort = r.whenShort ?? 'degrade';
  if (whenShort !== 'degrade' && whenShort !== 'fail') throw new TypeError('qos.replication.whenShort must be "degrade" or "fail"');
  return {
    copies,
    whenShort,
    rereplicateAfterMs: positive(r.rereplicateAfterMs, 'qos.replication.rereplicateAfterMs', 30_000),
    timeoutMs: r.timeoutMs === undefined ? undefined : positive(r.timeoutMs, 'qos.replication.timeoutMs', 1),
  };
}

const REPLICATION_SHAPES: ShapesOf<QosReplicationOptions> = {
  copies: 'number',
  whenShort: { oneOf: ['degrade', 'fail'] },
  rereplicateAfterMs: 'number',
  timeoutMs: 'number',
};

/** Where the store is, with its own settings. */
export type ResolvedStoreOptions =
  | { type: 'own'; store: QosStore }
  | { type: 'sqlite'; file: string; synchronous: 'NORMAL' | 'FULL'; lockTimeoutMs: number; integrityCheck: boolean }
  | { type: 'redis'; redis: RedisSource; prefix: string; commandTimeoutMs: number };

/** The store settings with every default applied. */
export interface ResolvedQosOptions {
  store: ResolvedStoreOptions;
  ttlMs: number;
  newConnectionLogMs: number;
  maxPendingPerTarget: number;
  maxMessages: number;
  maxMessageBytes: number;
  expiryIntervalMs: number;
  replication: ResolvedReplication;
}

const DAY = 24 * 60 * 60 * 1000;

/**
 * Applies every default and checks every value; a TypeError names a bad option. `hubName`
 * makes the default Redis prefix, which is refused unless `nameGiven` (the app chose the name).
 */
export function resolveQosOptions(options: QosOptions, hubName: string, nameGiven = true): ResolvedQosOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('qos must be an object with `file`, `redis` or `store`');
  const hasFile = options.file !== undefined;
  const hasRedis = options.redis !== undefined;
  const hasStore = options.store !== undefined;
  if (Number(hasFile) + Number(hasRedis) + Number(hasStore) !== 1)
    throw new TypeError('qos needs exactly one of `file` (SQLite), `redis` and `store`');
  let store: ResolvedStoreOptions;
  if (hasStore) {
    store = { type: 'own', store: checkedStore(options.store) };
  } else if (hasFile) {
    if (typeof options.file !== 'string' || options.file === '') throw new TypeError('qos.file must be a path or ":memory:"');
    if (options.synchronous !== undefined && options.synchronous !== 'NORMAL' && options.synchronous !== 'FULL') {
      throw new TypeError('qos.synchronous must be "NORMAL" or "FULL"');
    }
    store = {
      type: 'sqlite',
      file: options.file,
      synchronous: options.synchronous ?? 'NORMAL',
      lockTimeoutMs: positive(options.lockTimeoutMs, 'qos.lockTimeoutMs', 10_000),
      integrityCheck: options.integrityCheck ?? true,
    };
  } else {
    const prefix = options.redisPrefix ?? `sse:${hubName}`;
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
      throw new TypeError('qos.redisPrefix must be a non-empty string without { or }');
    }
    assertRedisSource(options.redis);
    store = {
      type: 'redis',
      redis: options.redis,
      prefix,
      commandTimeoutMs: positive(options.redisCommandTimeoutMs, 'qos.redisCommandTimeoutMs', DEFAULT_COMMAND_TIMEOUT_MS),
    };
    if (!nameGiven && options.redisPrefix === undefined) {
      throw new TypeError(
        `qos.redis needs a name of its own: set the hub's \`name\` (or qos.redisPrefix). Nodes on one Redis and prefix share one store: two apps that kept the default name (${prefix}) would drain each other's queues`,
      );
    }
  }
  return {
    store,
    ttlMs: positiveFinite(options.ttlMs, 'qos.ttlMs', 7 * DAY),
    newConnectionLogMs: newConnectionLogOf(options.newConnectionLogMs),
    maxPendingPerTarget: positive(options.maxPendingPerTarget, 'qos.maxPendingPerTarget', 10_000),
    maxMessages: positive(options.maxMessages, 'qos.maxMessages', 1_000_000),
    maxMessageBytes: positive(options.maxMessageBytes, 'qos.maxMessageBytes', 256 * 1024),
    expiryIntervalMs: positive(options.expiryIntervalMs, 'qos.expiryIntervalMs', 60_000),
    replication: resolveReplication(options.replication),
  };
}

/** `newConnectionLogMs`: 0 (off) or a positive number of ms (Infinity: all). */
export function newConnectionLogOf(value: number | undefined): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !(value >= 0))
    throw new TypeError(`qos.newConnectionLogMs must be 0 or a positive number of ms, got ${String(value)}`);
  return value;
}

/** The methods a store must have: a missing one is a TypeError at start, not a failure at the first send. */
const STORE_METHODS = ['insert', 'remove', 'messagesFor', 'get', 'delete', 'expire', 'counts', 'list', 'close'] as const;

function checkedStore(store: unknown): QosStore {
  const s = store as Partial<Record<string, unknown>> | null;
  if (s === null || typeof s !== 'object') throw new TypeError('qos.store must be an object implementing QosStore');
  if (typeof s.tag !== 'string' || !/^[0-9a-f]{8}$/.test(s.tag)) throw new TypeError('qos.store.tag must be 8 lowercase hex digits');
  if (typeof s.shared !== 'boolean') throw new TypeError('qos.store.shared must be a boolean');
  const missing = STORE_METHODS.filter((m) => typeof s[m] !== 'function');
  if (missing.length > 0) throw new TypeError(`qos.store lacks ${missing.join(', ')} (see QosStore)`);
  return store as QosStore;
}

/** What each `qos` option may be (checked by `ssePlugin()` / `createHub()` before anything starts). */
export const QOS_OPTION_SHAPES: ShapesOf<QosOptions> = {
  store: 'object',
  file: 'string',
  redis: { anyOf: ['string', 'object'] },
  redisPrefix: 'string',
  redisCommandTimeoutMs: 'number',
  ttlMs: 'number',
  newConnectionLogMs: 'number',
  synchronous: { oneOf: ['NORMAL', 'FULL'] },
  maxPendingPerTarget: 'number',
  maxMessages: 'number',
  maxMessageBytes: 'number',
  expiryIntervalMs: 'number',
  lockTimeoutMs: 'number',
  integrityCheck: 'boolean',
  replication: { options: REPLICATION_SHAPES },
};
