/**
 * An ioredis client (`Redis`, or `Cluster` for Redis Cluster), described by what every such
 * client has rather than by ioredis's own class types: the published declarations import no
 * optional engine, so an app without Redis never type-checks ioredis's declarations (which
 * need types of their own dependencies that a strict consumer does not have). The engine
 * checks at run time that it is an ioredis `Redis` or `Cluster`.
 */
export interface RedisClientLike {
  /** ioredis's connection status (`'wait'`, `'ready'`, …). */
  readonly status: string;
  /** ioredis makes a new connection with the same options; the engine uses duplicates only. */
  duplicate(...args: never[]): unknown;
}

/**
 * Where the Redis engine connects: a `redis://` / `rediss://` URL, or a ready ioredis client
 * (`new Redis({ sentinels, name })` for Sentinel, `new Cluster([...])` for Redis Cluster). A
 * client you pass stays yours: the engine `duplicate()`s it for the connections it needs and
 * never closes it. Give it `enableOfflineQueue: false` and a `commandTimeout` to keep the
 * fail-fast behaviour an URL gets.
 */
export type RedisSource = string | RedisClientLike;

/** How long one Redis command may take before it fails with `ERR_SSE_REDIS_UNAVAILABLE`, in ms. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
