import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { SseRedisUnavailableError } from '../core/errors.js';
import { loadEngine } from '../core/optional-engine.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, type RedisSource } from './redis-source.js';

/** A client the engine uses; `Redis` or `Cluster` share this API. */
export type RedisClient = Redis | Cluster;

/**
 * Fail fast, recover by itself: commands issued while the connection is down are refused at
 * once instead of queued (a durable send must not hang or be written later behind the
 * caller's back), a stalled server (SIGSTOP, a long fork) times a command out, and the
 * client reconnects forever with a short backoff.
 */
function failFastOptions(commandTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1000),
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    // A reconnect re-sends nothing: callers already got their error.
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: true,
  };
}

/**
 * Opens a client for `purpose` (named in errors). With a URL the client is new and fail-fast;
 * with a client the engine gets a duplicate, so that subscriber mode or a blocking command
 * never disturbs the caller's own connection. `close()` ends only what was opened here.
 */
export function openRedis(source: RedisSource, commandTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): RedisClient {
  assertRedisSource(source);
  const { Redis } = ioredis();
  if (typeof source === 'string') return new Redis(source, { ...failFastOptions(commandTimeoutMs), lazyConnect: true });
  return source instanceof Redis ? source.duplicate() : (source as Cluster).duplicate();
}

/** A TypeError unless `source` is a `redis://` / `rediss://` URL or an ioredis client (loads ioredis). */
export function assertRedisSource(source: unknown): asserts source is RedisSource {
  if (typeof source === 'string') {
    if (!/^rediss?:\/\//.test(source)) throw new TypeError(`Redis URL must start with redis:// or rediss://, got ${source.slice(0, 40)}`);
    // The engine is needed either way: a missing ioredis fails here, when the options are read.
    ioredis();
    return;
  }
  const { Redis, Cluster } = ioredis();
  if (!(source instanceof Redis) && !(source instanceof Cluster)) {
    throw new TypeError('redis must be a redis:// URL or an ioredis Redis / Cluster client');
  }
}

/** ioredis, loaded the first time a Redis option is used (an optional engine). */
export function ioredis(): typeof import('ioredis') {
  return loadEngine<typeof import('ioredis')>('ioredis', 'the Redis engine (a `redis` option)');
}

/** Whether `client` is a Redis Cluster client (PUBLISH there reaches only its shard's subscribers). */
export function isRedisCluster(client: RedisClient): client is Cluster {
  return client instanceof ioredis().Cluster;
}

/** Waits until `client` is ready, or rejects with `ERR_SSE_REDIS_UNAVAILABLE` after `timeoutMs`. */
export async function connectRedis(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'wait') void client.connect().catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new SseRedisUnavailableError(`Redis not reachable within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/**
 * Maps a client error (not connected, timeout, connection lost) to `ERR_SSE_REDIS_UNAVAILABLE`;
 * Redis's own errors (a script's, WRONGTYPE) pass. The client's text (which may name Redis's
 * address: `connect ECONNREFUSED 10.0.0.5:6379`) stays in `cause`, out of the message.
 */
export function redisFailure(err: unknown, what: string): unknown {
  if (err instanceof SseRedisUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (
    /enableOfflineQueue|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|max retries|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN/i.test(
      message,
    )
  ) {
    return new SseRedisUnavailableError(`${what}: Redis unavailable`, { cause: err });
  }
  return err;
}
