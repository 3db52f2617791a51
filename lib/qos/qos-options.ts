import { positive } from '../core/option-checks.js';
import type { ShapesOf } from '../core/option-shape.js';
import { assertRedisSource } from '../redis/redis-connection.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, type RedisSource } from '../redis/redis-source.js';

/**
 * Options of durable delivery (`qos` option of the plugin or hub). Exactly one of `file`
 * (SQLite, one store per process) and `redis` (one store shared by every node on the same
 * Redis and `redisPrefix`) is required.
 */
export interface QosOptions {
  /** SQLite database file (its folder is created on demand), or `:memory:` for tests. */
  file?: string;
  /**
   * Keep the messages in Redis instead: a `redis://` URL or an ioredis client (Sentinel,
   * Cluster). Every node on the same Redis and `redisPrefix` shares one store: any node drains
   * a reconnecting user's queue, an ack through any node removes the message, and losing an
   * app node loses nothing. How durable a committed send is depends on Redis's persistence
   * (README "How durable is a committed send?"): with `appendonly yes` + `appendfsync everysec` a Redis crash
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
  /** Default time a message is kept: pending for queues, retained for logs. Default 7 days. */
  ttlMs?: number;
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
}

/** Where the store is, with its own settings. */
export type ResolvedStoreOptions =
  | { type: 'sqlite'; file: string; synchronous: 'NORMAL' | 'FULL'; lockTimeoutMs: number; integrityCheck: boolean }
  | { type: 'redis'; redis: RedisSource; prefix: string; commandTimeoutMs: number };

/** The store settings with every default applied. */
export interface ResolvedQosOptions {
  store: ResolvedStoreOptions;
  ttlMs: number;
  maxPendingPerTarget: number;
  maxMessages: number;
  maxMessageBytes: number;
  expiryIntervalMs: number;
}

const DAY = 24 * 60 * 60 * 1000;

/**
 * Applies every default and checks every value; a TypeError names a bad option. `hubName`
 * makes the default Redis prefix, which is refused unless `nameGiven` (the app chose the name).
 */
export function resolveQosOptions(options: QosOptions, hubName: string, nameGiven = true): ResolvedQosOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('qos must be an object with `file` or `redis`');
  const hasFile = options.file !== undefined;
  const hasRedis = options.redis !== undefined;
  if (hasFile === hasRedis) throw new TypeError('qos needs exactly one of `file` (SQLite) and `redis`');
  let store: ResolvedStoreOptions;
  if (hasFile) {
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
    ttlMs: positive(options.ttlMs, 'qos.ttlMs', 7 * DAY),
    maxPendingPerTarget: positive(options.maxPendingPerTarget, 'qos.maxPendingPerTarget', 10_000),
    maxMessages: positive(options.maxMessages, 'qos.maxMessages', 1_000_000),
    maxMessageBytes: positive(options.maxMessageBytes, 'qos.maxMessageBytes', 256 * 1024),
    expiryIntervalMs: positive(options.expiryIntervalMs, 'qos.expiryIntervalMs', 60_000),
  };
}

/** What each `qos` option may be (checked by `ssePlugin()` / `createHub()` before anything starts). */
export const QOS_OPTION_SHAPES: ShapesOf<QosOptions> = {
  file: 'string',
  redis: { anyOf: ['string', 'object'] },
  redisPrefix: 'string',
  redisCommandTimeoutMs: 'number',
  ttlMs: 'number',
  synchronous: { oneOf: ['NORMAL', 'FULL'] },
  maxPendingPerTarget: 'number',
  maxMessages: 'number',
  maxMessageBytes: 'number',
  expiryIntervalMs: 'number',
  lockTimeoutMs: 'number',
  integrityCheck: 'boolean',
};
