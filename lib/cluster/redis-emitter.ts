import { randomBytes } from 'node:crypto';
import { SseRedisUnavailableError } from '../core/errors.js';
import { connectRedis, openRedis, redisFailure, type RedisClient } from '../redis/redis-connection.js';
import type { RedisSource } from '../redis/redis-source.js';
import type { SendItem, SendRequest } from './messages.js';
import type { Envelope } from './redis-envelope.js';
import { LIVE, membershipKeys } from './redis-membership.js';

/** Settings of {@link RedisEmitterTransport}. */
export interface RedisEmitterTransportOptions {
  redis: RedisSource;
  /** The nodes' prefix (`cluster.redisPrefix`, default `sse:` + the group). */
  prefix: string;
  /** Longest wait for the nodes' answers (and of one Redis command), in ms. */
  timeoutMs: number;
  /** A node whose last beat is older than this is not asked (3 × the nodes' `healthIntervalMs`). */
  nodeTtlMs: number;
}

interface Waiting {
  nodeId: string;
  resolve: (answer: unknown) => void;
}

/**
 * Publishes sends into a Redis-engine cluster without being a node: the same `send` request
 * a node's {@link RedisTransport} broadcasts, on the same channel, to the nodes alive now
 * (read from their heartbeat set), whose answers (the connections each reached) come back on
 * a channel of its own. It holds no connections, never beats, and no node counts it as a
 * peer (Socket.IO's Redis emitter, with counts).
 */
export class RedisEmitterTransport {
  readonly id = `emitter-${randomBytes(6).toString('hex')}`;
  readonly #options: RedisEmitterTransportOptions;
  readonly #pub: RedisClient;
  readonly #sub: RedisClient;
  readonly #waiting = new Map<number, Waiting>();
  #ready: Promise<void> | undefined;
  #nextId = 1;
  #closed = false;

  constructor(options: RedisEmitterTransportOptions) {
    this.#options = options;
    this.#pub = openRedis(options.redis, options.timeoutMs);
    this.#sub = openRedis(options.redis, options.timeoutMs);
    this.#pub.on('error', () => undefined);
    this.#sub.on('error', () => undefined);
    this.#sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.#onAnswer(message));
  }

  /** Connects and subscribes to the answer channel once; again after a failure. */
  #start(): Promise<void> {
    this.#ready ??= (async () => {
      const wait = Math.max(this.#options.timeoutMs, 1000);
      await Promise.all([connectRedis(this.#pub, wait), connectRedis(this.#sub, wait)]);
      await this.#sub.subscribe(`${this.#options.prefix}:to:${this.id}`);
    })().catch((err: unknown) => {
      this.#ready = undefined;
      throw redisFailure(err, 'emitter start');
    });
    return this.#ready;
  }

  /**
   * Sends `items` to every live node; resolves to the connections each item reached, summed
   * over the nodes that answered within the timeout (a node that did not counts 0).
   * Rejects with `ERR_SSE_REDIS_UNAVAILABLE` when Redis cannot be reached.
   */
  async send(items: SendItem[]): Promise<number[]> {
    if (this.#closed) throw new SseRedisUnavailableError('emitter: closed');
    await this.#start();
    const o = this.#options;
    let nodes: string[];
    try {
      nodes = (await this.#pub.eval(LIVE, 1, membershipKeys(o.prefix).nodes, o.nodeTtlMs)) as string[];
    } catch (err) {
      throw redisFailure(err, 'emitter: live nodes');
    }
    const counts = items.map(() => 0);
    if (nodes.length === 0) return counts;
    const first = this.#nextId;
    this.#nextId += nodes.length;
    const answers = nodes.map(
      (nodeId, i) =>
        new Promise<unknown>((resolve) => {
          const timer = setTimeout(() => {
            this.#waiting.delete(first + i);
            resolve(null);
          }, o.timeoutMs);
          this.#waiting.set(first + i, {
            nodeId,
            resolve: (answer) => {
              clearTimeout(timer);
              resolve(answer);
            },
          });
        }),
    );
    // Durable items (with an id) are written however late; live ones not after the deadline, when they counted 0.
    const request: SendRequest = { type: 'send', items, deadline: Date.now() + o.timeoutMs };
    const envelope: Envelope = { k: 'q', id: first, from: this.id, to: nodes, req: request };
    try {
      await this.#pub.publish(`${o.prefix}:all`, JSON.stringify(envelope));
    } catch (err) {
      for (let i = 0; i < nodes.length; i++) {
        this.#waiting.get(first + i)?.resolve(null);
        this.#waiting.delete(first + i);
      }
      throw redisFailure(err, 'emitter: publish');
    }
    for (const answer of await Promise.all(answers)) {
      if (!Array.isArray(answer)) continue;
      answer.forEach((n: unknown, i) => {
        if (typeof n === 'number' && i < counts.length) counts[i]! += n;
      });
    }
    return counts;
  }

  #onAnswer(raw: Buffer): void {
    let message: Envelope;
    try {
      message = JSON.parse(raw.toString('utf8')) as Envelope;
    } catch {
      return;
    }
    if (message?.k !== 'a' || !Number.isSafeInteger(message.id)) return;
    const waiting = this.#waiting.get(message.id);
    if (waiting === undefined || waiting.nodeId !== message.from) return;
    this.#waiting.delete(message.id);
    waiting.resolve(message.ok ? message.v : null);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiting of this.#waiting.values()) waiting.resolve(null);
    this.#waiting.clear();
    this.#pub.disconnect();
    this.#sub.disconnect();
  }
}
