import { got, type Got } from 'got';
import { SseError } from './core/errors.js';
import type { EventMap, EventName, SendArgs } from './core/event-map.js';
import { serializeData } from './core/frame.js';
import { positive, positiveFinite } from './core/option-checks.js';
import { checkOptionShapes, type ShapesOf } from './core/option-shape.js';
import { keysOf, type Key } from './core/user.js';
import type { SendTargetKind } from './core/targets.js';
import { RedisEmitterTransport } from './cluster/redis-emitter.js';
import type { SendItem } from './cluster/messages.js';
import { idempotencyKeyOf } from './qos/idempotency-key.js';
import { MessageIdGenerator } from './qos/message-id.js';
import type { QosSendOptions, QosSendResult } from './qos/qos-api.js';
import { resolveQosOptions } from './qos/qos-options.js';
import { RedisQosStore } from './qos/redis-store.js';
import type { TypedQosSends } from './qos/typed-qos.js';
import type { RedisSource } from './redis/redis-source.js';
import type { SendOptions } from './hub.js';
import type { PublishTargetKind } from './http/publish-keys.js';

/**
 * An emitter on the Redis engine: publishes straight into the cluster's Redis channels, as a
 * node's transport does, with no HTTP hop and without being a node.
 */
export interface RedisEmitterOptions {
  /** The Redis of the nodes' `cluster.redis`: a `redis://` URL or an ioredis client (duplicated). */
  redis: RedisSource;
  /** The system's name, the nodes' hub `name` (their default prefixes come from it). Required unless both prefixes are given. */
  name?: string;
  /** The nodes' `cluster.redisPrefix`, if they set one. Default `sse:` + `name`. */
  redisPrefix?: string;
  /**
   * Durable sends (`emitter.qos`) into the nodes' Redis store: give what the nodes' `qos`
   * option has (the same Redis, `redisPrefix`, caps, `ttlMs`); `{}` for their defaults.
   * Default: none (`emitter.qos` throws).
   */
  qos?: { redis?: RedisSource; redisPrefix?: string; ttlMs?: number; maxPendingPerTarget?: number; maxMessages?: number; maxMessageBytes?: number };
  /** Longest wait for the nodes' counts, in ms (a node that does not answer in time counts 0). Default `3000`. */
  timeoutMs?: number;
  /** The nodes' `cluster.healthIntervalMs`: a node silent for 3 × this is not asked. Default `1000`. */
  healthIntervalMs?: number;
}

/** An emitter through the publish API (`publish` option of the plugin): any cluster, any host. */
export interface HttpEmitterOptions {
  /** The plugin's base URL, e.g. `https://app.example.com/sse/hr`. */
  url: string;
  /** The API key's secret. */
  apiKey: string;
  /** Longest wait for an answer, in ms. Default `10000`. */
  timeoutMs?: number;
}

/** Durable sends of an emitter: as `hub.qos`, through the nodes' store. */
export type EmitterQos<Events extends EventMap> = TypedQosSends<Events>;

/**
 * Sends of a process that serves no streams, typed by the same event map as the hub: each
 * resolves to the connections reached, cluster-wide, as `hub.send*` does.
 */
export interface SseEmitter<Events extends EventMap = Record<string, unknown>> {
  /** Sends to every connection. */
  sendAll<K extends EventName<Events>>(event: K, ...args: SendArgs<Events[K], SendOptions>): Promise<number>;
  /** Sends to users. */
  sendByUserId<K extends EventName<Events>>(userIds: Key | readonly Key[], event: K, ...args: SendArgs<Events[K], SendOptions>): Promise<number>;
  /** Sends to the connections of access tokens. */
  sendByAccessToken<K extends EventName<Events>>(
    tokens: string | readonly string[],
    event: K,
    ...args: SendArgs<Events[K], SendOptions>
  ): Promise<number>;
  /** Sends to tenants. */
  sendByTenantId<K extends EventName<Events>>(tenantIds: Key | readonly Key[], event: K, ...args: SendArgs<Events[K], SendOptions>): Promise<number>;
  /** Sends to the members of channels, on any node. */
  sendByChannel<K extends EventName<Events>>(
    channels: string | readonly string[],
    event: K,
    ...args: SendArgs<Events[K], SendOptions>
  ): Promise<number>;
  /**
   * Durable sends (at least once). Through the publish API: the nodes' store. On Redis: with
   * the `qos` option only (else a TypeError).
   */
  readonly qos: EmitterQos<Events>;
  /** Closes its Redis connections (or its HTTP agent). */
  close(): Promise<void>;
}

const REDIS_SHAPES: ShapesOf<RedisEmitterOptions> = {
  redis: 'any',
  name: 'string',
  redisPrefix: 'string',
  qos: {
    options: {
      redis: 'any',
      redisPrefix: 'string',
      ttlMs: 'number',
      maxPendingPerTarget: 'number',
      maxMessages: 'number',
      maxMessageBytes: 'number',
    } satisfies ShapesOf<NonNullable<RedisEmitterOptions['qos']>>,
  },
  timeoutMs: 'number',
  healthIntervalMs: 'number',
};
const HTTP_SHAPES: ShapesOf<HttpEmitterOptions> = { url: 'string', apiKey: 'string', timeoutMs: 'number' };

/** One send, whatever the way out. */
type Sender = {
  /** Why durable sends are not possible, or undefined. */
  noDurable?: string;
  live(kind: PublishTargetKind, keys: string[], event: string, data: unknown, options: SendOptions | undefined): Promise<number>;
  durable(kind: PublishTargetKind, keys: string[], event: string, data: unknown, options: QosSendOptions | undefined): Promise<QosSendResult>;
  close(): Promise<void>;
};

/**
 * Creates an emitter for a process that serves no streams (a queue worker, a cron job): on
 * the Redis engine it publishes the cluster's own `send` messages into Redis (no HTTP hop,
 * like Socket.IO's Redis emitter; durable sends go into the nodes' Redis store when `qos` is
 * given); elsewhere it calls the publish API with an API key. Typed by the same event map as
 * the hub.
 *
 * @example
 * type Events = { 'invoice-paid': { invoice: number } };
 * const emitter = createEmitter<Events>({ redis: 'redis://redis:6379', name: 'hr' });
 * await emitter.sendByUserId(7, 'invoice-paid', { invoice: 1042 });
 * // or: createEmitter<Events>({ url: 'https://app.example.com/sse/hr', apiKey: process.env.SSE_API_KEY! })
 *
 * @throws TypeError for bad options (neither `redis` nor `url`, no `name` nor prefix, ...).
 */
export function createEmitter<Events extends EventMap = Record<string, unknown>>(
  options: RedisEmitterOptions | HttpEmitterOptions,
): SseEmitter<Events> {
  if (options === null || typeof options !== 'object') throw new TypeError('createEmitter takes { redis, name } or { url, apiKey }');
  const viaRedis = 'redis' in options && options.redis !== undefined;
  // A misspelt option is a TypeError naming the nearest one, as for the plugin's options.
  checkOptionShapes(options, viaRedis ? REDIS_SHAPES : HTTP_SHAPES, '');
  const sender = viaRedis ? redisSender(options as RedisEmitterOptions) : httpSender(options as HttpEmitterOptions);
  const live =
    (kind: PublishTargetKind, name: string) =>
    (keys: unknown, event: string, data?: unknown, options?: SendOptions): Promise<number> => {
      checkEvent(event);
      return sender.live(kind, keysOf(keys as Key | readonly Key[], name), event, data, options);
    };
  const durable =
    (kind: PublishTargetKind, name: string) =>
    (keys: unknown, event: string, data?: unknown, options?: QosSendOptions): Promise<QosSendResult> => {
      checkDurable(sender, event);
      return sender.durable(kind, keysOf(keys as Key | readonly Key[], name), event, data, options);
    };
  const emitter = {
    sendAll: (event: string, data?: unknown, options?: SendOptions) => {
      checkEvent(event);
      return sender.live('all', [''], event, data, options);
    },
    sendByUserId: live('user', 'userIds'),
    sendByAccessToken: live('token', 'accessTokens'),
    sendByTenantId: live('tenant', 'tenantIds'),
    sendByChannel: live('channel', 'channels'),
    qos: {
      sendAll: (event: string, data?: unknown, options?: QosSendOptions) => {
        checkDurable(sender, event);
        return sender.durable('all', [''], event, data, options);
      },
      sendByUserId: durable('user', 'userIds'),
      sendByAccessToken: durable('token', 'accessTokens'),
      sendByTenantId: durable('tenant', 'tenantIds'),
      sendByChannel: durable('channel', 'channels'),
    },
    close: () => sender.close(),
  };
  return emitter as unknown as SseEmitter<Events>;
}

function checkEvent(event: unknown): asserts event is string {
  if (typeof event !== 'string' || event === '' || /[\r\n\0]/.test(event))
    throw new TypeError('event must be a non-empty string without CR, LF or NUL');
}

function checkDurable(sender: Sender, event: unknown): void {
  checkEvent(event);
  if (sender.noDurable !== undefined) throw new TypeError(sender.noDurable);
}

function redisSender(o: RedisEmitterOptions): Sender {
  const name = o.name;
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw new TypeError('createEmitter: name must be a non-empty string');
  const prefix = o.redisPrefix ?? (name === undefined ? undefined : `sse:${name}`);
  if (prefix === undefined) throw new TypeError("createEmitter: give the nodes' name (or redisPrefix)");
  const timeoutMs = positive(o.timeoutMs, 'timeoutMs', 3000);
  const transport = new RedisEmitterTransport({
    redis: o.redis,
    prefix,
    timeoutMs,
    nodeTtlMs: 3 * positive(o.healthIntervalMs, 'healthIntervalMs', 1000),
  });
  let store: { store: RedisQosStore; ids: MessageIdGenerator; ttlMs: number; maxBytes: number } | undefined;
  if (o.qos !== undefined) {
    if (o.qos.redisPrefix === undefined && name === undefined) throw new TypeError("createEmitter: qos needs the nodes' name (or qos.redisPrefix)");
    const resolved = resolveQosOptions({ ...o.qos, redis: o.qos.redis ?? o.redis }, name ?? '', true);
    const s = resolved.store;
    if (s.type !== 'redis') throw new TypeError('createEmitter: qos is the Redis store');
    const redisStore = new RedisQosStore(s.redis, {
      prefix: s.prefix,
      commandTimeoutMs: s.commandTimeoutMs,
      maxPendingPerTarget: resolved.maxPendingPerTarget,
      maxMessages: resolved.maxMessages,
    });
    store = { store: redisStore, ids: new MessageIdGenerator(redisStore.tag), ttlMs: resolved.ttlMs, maxBytes: resolved.maxMessageBytes };
  }
  const item = (kind: SendTargetKind, keys: string[], event: string, data: unknown, listening: boolean): SendItem => ({
    kind,
    keys,
    event,
    data: serializeData(data),
    listening,
  });
  return {
    noDurable: store === undefined ? 'createEmitter: durable sends on Redis need the qos option (the nodes’ Redis store)' : undefined,
    async live(kind, keys, event, data, options) {
      const [count] = await transport.send([item(kind, keys, event, data, options?.listening === true)]);
      return count!;
    },
    async durable(kind, keys, event, data, options) {
      if (store === undefined) throw new TypeError('createEmitter: no qos option');
      const ttlMs = positiveFinite(options?.ttlMs, 'ttlMs', store.ttlMs);
      const send = item(kind, keys, event, data, options?.listening === true);
      if (Buffer.byteLength(send.data) > store.maxBytes) throw new TypeError(`Durable message over qos.maxMessageBytes (${store.maxBytes})`);
      const idempotencyKey = idempotencyKeyOf(options?.idempotencyKey);
      const now = Date.now();
      if (keys.length === 0) return { messageId: store.ids.next(now), delivered: 0, copies: 1 };
      // Committed to the nodes' store first (any node replays it to a user who connects later), then
      // handed to the live nodes as a forwarded durable send, which they deliver as their own.
      const message = await store.store.insert(
        { kind, event, data: send.data, listening: send.listening, createdAt: now, expiresAt: now + ttlMs },
        keys,
        idempotencyKey,
      );
      // A retry of a send the store already holds (by its key, the nodes' too): its first id, nothing delivered again.
      if (message.duplicate === true) return { messageId: message.id, delivered: 0, copies: 1 };
      const [delivered] = await transport.send([{ ...send, id: message.id }]).catch(() => [0]);
      return { messageId: message.id, delivered: delivered!, copies: 1 };
    },
    async close() {
      await Promise.all([transport.close(), store?.store.close()]);
    },
  };
}

function httpSender(o: HttpEmitterOptions): Sender {
  if (typeof o.url !== 'string' || !/^https?:\/\//.test(o.url))
    throw new TypeError('createEmitter: url must be the plugin’s base URL (http:// or https://)');
  if (typeof o.apiKey !== 'string' || o.apiKey === '') throw new TypeError('createEmitter: apiKey is required');
  const base = o.url.replace(/\/+$/, '');
  const client: Got = got.extend({
    prefixUrl: base,
    headers: { authorization: `Bearer ${o.apiKey}` },
    timeout: { request: positive(o.timeoutMs, 'timeoutMs', 10_000) },
    // A publish is not idempotent unless durable with an idempotencyKey: never retried here.
    retry: { limit: 0 },
    throwHttpErrors: false,
    responseType: 'json',
  });
  const publish = async (body: Record<string, unknown>): Promise<{ delivered: number; messageId?: string; copies?: number }> => {
    const res = await client.post('publish', { json: body });
    const answer = res.body as { delivered?: number; messageId?: string; copies?: number; code?: string; message?: string };
    if (res.statusCode !== 200) {
      // The server's own words (its 4xx message) are the cause; the code and status are its.
      const code = typeof answer?.code === 'string' ? answer.code : 'ERR_SSE_PUBLISH_FAILED';
      throw new SseError(`The publish API answered ${res.statusCode} ${code}`, code, res.statusCode, { cause: answer });
    }
    return answer as { delivered: number; messageId?: string; copies?: number };
  };
  const target = (kind: PublishTargetKind, keys: string[]): Record<string, unknown> => (kind === 'all' ? { target: kind } : { target: kind, keys });
  return {
    async live(kind, keys, event, data, options) {
      return (await publish({ ...target(kind, keys), event, data: data ?? null, listening: options?.listening === true })).delivered;
    },
    async durable(kind, keys, event, data, options) {
      const body: Record<string, unknown> = {
        ...target(kind, keys),
        event,
        data: data ?? null,
        durable: true,
        listening: options?.listening === true,
      };
      if (options?.ttlMs !== undefined) body.ttlMs = options.ttlMs;
      if (options?.idempotencyKey !== undefined) body.idempotencyKey = options.idempotencyKey;
      const r = await publish(body);
      return { messageId: r.messageId!, delivered: r.delivered, copies: typeof r.copies === 'number' ? r.copies : 1 };
    },
    close: () => Promise.resolve(),
  };
}
