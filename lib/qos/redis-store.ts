import { createHash } from 'node:crypto';
import { SseClosedError, SseQueueFullError } from '../core/errors.js';
import { connectRedis, openRedis, redisFailure, type RedisClient } from '../redis/redis-connection.js';
import type { RedisSource } from '../redis/redis-source.js';
import type {
  InsertedMessage,
  NewMessage,
  QosStore,
  QueueCount,
  RemovedTarget,
  StoredEntry,
  StoreFilter,
  StoredMessage,
  TargetRef,
} from './qos-store.js';
import {
  countsOf,
  entryOf,
  insertArgs,
  listArgs,
  pageArgs,
  pageOf,
  removeArgs,
  removedOf,
  SCRIPTS,
  targetOf,
  type EntryReply,
  type InsertItem,
  type InsertReply,
  type RemoveItem,
  type ScriptClient,
} from './redis-scripts.js';
import { TickBatch, type Batched } from './tick-batch.js';

/** Most calls in one script call, and most bytes of arguments (about): one call blocks Redis while it runs. */
const MAX_BATCH = 500;
const MAX_BATCH_BYTES = 1024 * 1024;

/** Options of {@link RedisQosStore}. */
export interface RedisQosStoreOptions {
  /** Key prefix; wrapped in `{}` (one Redis Cluster slot). */
  prefix: string;
  /** Longest a command may take (clients opened from a URL). */
  commandTimeoutMs: number;
  /** Caps, checked in Redis atomically with the insert: nodes sharing the store share them. */
  maxPendingPerTarget: number;
  maxMessages: number;
}

/**
 * The Redis store of durable delivery, shared by every node on the same Redis and prefix:
 * they all have the same tag (made from the prefix), so every message is "own" on every node,
 * any node drains a reconnecting user's queue and an ack through any node removes the entry.
 * A send is committed once Redis answered the insert script (how durable that is depends on
 * Redis persistence: docs/redis.md, "How durable is a committed send?"). The inserts (and the acks) of one tick go
 * to Redis as one script call ({@link TickBatch}): the group commit of this store.
 * Fail-fast: when Redis is away every call rejects with `ERR_SSE_REDIS_UNAVAILABLE` at once
 * (or after the command timeout when Redis stalls); the client reconnects by itself.
 */
export class RedisQosStore implements QosStore {
  readonly tag: string;
  readonly shared = true;
  readonly #client: RedisClient;
  readonly #scripts: ScriptClient;
  readonly #base: string;
  readonly #seqKey: string;
  readonly #options: RedisQosStoreOptions;
  /** The first connection, awaited by the calls made before it is ready (start-up); later a call made while Redis is down fails at once. */
  #first: Promise<void> | undefined;
  #closed = false;
  readonly #inserts = new TickBatch<InsertItem, InsertedMessage>((batch) => this.#runInserts(batch), {
    maxItems: MAX_BATCH,
    maxBytes: MAX_BATCH_BYTES,
    sizeOf: (i) => i.fresh.data.length + i.fresh.event.length + i.keys.reduce((n, k) => n + k.length + 16, 0),
  });
  readonly #removes = new TickBatch<RemoveItem[], RemovedTarget[]>((batch) => this.#runRemoves(batch), {
    maxItems: MAX_BATCH,
    maxBytes: MAX_BATCH_BYTES,
    sizeOf: (items) => items.reduce((n, i) => n + i.messageId.length + i.targets.reduce((m, t) => m + t.key.length + 16, 0), 0),
  });

  constructor(source: RedisSource, options: RedisQosStoreOptions) {
    this.#options = options;
    this.#base = `{${options.prefix}}`;
    this.#seqKey = `${this.#base}:seq`;
    // One tag for every node of the store, derived from its prefix alone: it is known before Redis answers.
    this.tag = createHash('sha256').update(`koa-sse-server qos ${options.prefix}`).digest('hex').slice(0, 8);
    const client = openRedis(source, options.commandTimeoutMs);
    this.#client = client;
    // Connection errors reach the callers of each command as ERR_SSE_REDIS_UNAVAILABLE; without a listener ioredis would print each one.
    client.on('error', () => undefined);
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: 1, lua });
    this.#scripts = client as unknown as ScriptClient;
    this.#first = connectRedis(client, options.commandTimeoutMs).then(
      () => (this.#first = undefined),
      () => (this.#first = undefined),
    );
  }

  /** Calls the client when it is ready: Redis's own failures pass, connection failures become `ERR_SSE_REDIS_UNAVAILABLE`. */
  async #call<T>(what: string, script: keyof typeof SCRIPTS, args: (string | number)[]): Promise<T> {
    if (this.#closed) throw new SseClosedError('The durable queue');
    if (this.#first !== undefined) await this.#first;
    try {
      return (await this.#scripts[script](this.#seqKey, this.#base, ...args)) as T;
    } catch (err) {
      throw redisFailure(err, what);
    }
  }

  onReady(listener: () => void): void {
    this.#client.on('ready', listener);
  }

  /**
   * Stores a message. The inserts of one tick go to Redis as one script call (group commit:
   * one round trip and one AOF write for all of them); each promise resolves with its own
   * answer once Redis has run the call.
   */
  insert(fresh: NewMessage, keys: string[], idempotencyKey?: string): Promise<InsertedMessage> {
    if (this.#closed) return Promise.reject(new SseClosedError('The durable queue'));
    return this.#inserts.add(idempotencyKey === undefined ? { fresh, keys } : { fresh, keys, idempotencyKey });
  }

  #runInserts(batch: Batched<InsertItem, InsertedMessage>[]): void {
    const o = this.#options;
    const args = insertArgs(
      this.tag,
      o.maxMessages,
      o.maxPendingPerTarget,
      batch.map((op) => op.item),
    );
    this.#call<InsertReply>('Durable send', 'sseQosInsert', args).then(
      (replies) => {
        for (const [i, { item, resolve, reject }] of batch.entries()) {
          const [status, value] = replies[i]!;
          if (status === 'ok') resolve({ id: value!, ...item.fresh });
          else if (status === 'dup') resolve({ id: value!, ...item.fresh, duplicate: true });
          else {
            reject(
              new SseQueueFullError(
                value === undefined
                  ? `The durable queue holds its maximum of ${o.maxMessages} messages`
                  : `${item.fresh.kind} ${value.slice(0, 64)} has ${o.maxPendingPerTarget} pending durable messages`,
              ),
            );
          }
        }
      },
      (err: unknown) => {
        for (const op of batch) op.reject(err);
      },
    );
  }

  /** Removes targets of messages (acks); the removals of one tick go as one script call. */
  remove(items: RemoveItem[]): Promise<RemovedTarget[]> {
    if (items.length === 0) return Promise.resolve([]);
    if (this.#closed) return Promise.reject(new SseClosedError('The durable queue'));
    return this.#removes.add(items);
  }

  #runRemoves(batch: Batched<RemoveItem[], RemovedTarget[]>[]): void {
    const { args, firsts } = removeArgs(batch.map((op) => op.item));
    this.#call<(string | number)[]>('Durable ack', 'sseQosRemove', args).then(
      (flat) => {
        const results = removedOf(flat, firsts);
        for (const [i, op] of batch.entries()) op.resolve(results[i]!);
      },
      (err: unknown) => {
        for (const op of batch) op.reject(err);
      },
    );
  }

  async messagesFor(
    refs: TargetRef[],
    afterId: string,
    limit: number,
    now: number,
    events?: string[],
  ): Promise<{ messages: StoredMessage[]; mark: string }> {
    return pageOf(await this.#call('Durable replay', 'sseQosPage', pageArgs(this.tag, refs, afterId, limit, now, events)));
  }

  async get(id: string): Promise<StoredEntry | undefined> {
    const reply = await this.#call<EntryReply | null>('Durable status', 'sseQosGet', [id]);
    return reply === null ? undefined : entryOf(reply);
  }

  async delete(id: string): Promise<TargetRef[] | undefined> {
    const refs = await this.#call<string[] | null>('Durable cancel', 'sseQosDelete', [id]);
    return refs === null ? undefined : refs.map(targetOf);
  }

  async expire(now: number, limit: number): Promise<StoredEntry[]> {
    return (await this.#call<EntryReply[]>('Durable expiry', 'sseQosExpire', [now, limit])).map(entryOf);
  }

  async counts(): Promise<{ queues: QueueCount[]; total: number }> {
    return countsOf(await this.#call('Durable counts', 'sseQosCounts', []));
  }

  async list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }> {
    const [total, items] = await this.#call<[number, EntryReply[]]>('Durable listing', 'sseQosList', listArgs(filter, offset, limit));
    return { total, items: items.map(entryOf) };
  }

  /** Closes the connection this store opened (a client passed in is duplicated, never closed). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#inserts.flush();
    this.#removes.flush();
    this.#closed = true;
    try {
      // Waits for replies to what is in flight: accepted sends are answered before the socket closes.
      if (this.#client.status === 'ready') await this.#client.quit();
    } catch {
      // Redis is away: nothing left to wait for.
    }
    this.#client.disconnect();
  }
}
