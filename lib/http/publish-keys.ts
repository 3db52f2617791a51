import { createHash, timingSafeEqual } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { SseForbiddenError, SseRateLimitedError, SseUnauthorizedError } from '../core/errors.js';
import { positive } from '../core/option-checks.js';
import type { ShapesOf } from '../core/option-shape.js';

/** Whom a publish may address: the `target` of a publish request. */
export type PublishTargetKind = 'user' | 'token' | 'tenant' | 'channel' | 'all';

/** Every {@link PublishTargetKind}. */
export const PUBLISH_TARGET_KINDS: readonly PublishTargetKind[] = ['user', 'token', 'tenant', 'channel', 'all'];

/**
 * What one API key may do. Every field left out allows: a key without `scope` may do
 * everything the publish API offers on every system it is given to.
 */
export interface PublishKeyScope {
  /** The systems (plugin names, `hub.name`) the key works on; another system answers 403. Default: all. */
  systems?: string[];
  /** The target kinds it may publish to. Default: all of {@link PublishTargetKind}. */
  targets?: PublishTargetKind[];
  /** Whether it may publish durable messages (`durable: true`). Default `true`. */
  durable?: boolean;
  /** Whether it may read: online checks and presence. Default `true`. */
  read?: boolean;
  /** Whether it may publish. Default `true`. */
  write?: boolean;
}

/** A rate: at most `messages` published per `windowMs` (each message of a batch counts one). */
export interface PublishRate {
  /** Messages per window. Default `1000`. */
  messages?: number;
  /** The window in ms. Default `1000`. */
  windowMs?: number;
}

/**
 * One API key of the publish API. The key itself (the secret callers send as
 * `Authorization: Bearer <secret>`) is never given to the server: only its hash, from
 * {@link hashApiKey} or `printf %s "$SECRET" | sha256sum`.
 */
export interface PublishKey {
  /** A name for the key (error messages, its rate count): not secret. Unique among the keys. */
  id: string;
  /** SHA-256 of the secret, 64 hex digits ({@link hashApiKey}). */
  hash: string;
  /** What the key may do. Default: everything. */
  scope?: PublishKeyScope;
  /** This key's rate, instead of the publish API's `rate`. */
  rate?: PublishRate | false;
}

/**
 * The publish API (`POST {base}/publish`, `{base}/publish/batch`, `GET {base}/publish/online`,
 * `{base}/publish/presence`): off unless keys are given. Give several keys to rotate one
 * without a restart (add the new key, move the callers, remove the old one), or replace the
 * list at runtime with `plugin.setPublishKeys(keys)`.
 */
export interface PublishOptions {
  /** The keys that may call it. An empty list keeps the endpoints off (404). */
  keys: PublishKey[];
  /** Limit of a request body in bytes (413 past it). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most messages in one batch (413 past it; nothing is sent). Default `1000`. */
  maxBatch?: number;
  /**
   * The rate of each key (429 with `Retry-After` past it; nothing of the refused request is
   * sent). Counted in memory on each node. `false`: no limit. Default: 1000 messages per second.
   */
  rate?: PublishRate | false;
}

const RATE_SHAPES: ShapesOf<PublishRate> = { messages: 'number', windowMs: 'number' };
const SCOPE_SHAPES: ShapesOf<PublishKeyScope> = {
  systems: { arrayOf: 'string' },
  targets: { arrayOf: { oneOf: PUBLISH_TARGET_KINDS } },
  durable: 'boolean',
  read: 'boolean',
  write: 'boolean',
};
const KEY_SHAPES: ShapesOf<PublishKey> = {
  id: 'string',
  hash: 'string',
  scope: { options: SCOPE_SHAPES },
  rate: { anyOf: [{ oneOf: [false] }, { options: RATE_SHAPES }] },
};

/** What each of {@link PublishOptions} may be (checked with the plugin's options). */
export const PUBLISH_SHAPES: ShapesOf<PublishOptions> = {
  keys: { arrayOf: { options: KEY_SHAPES } },
  maxBodyBytes: 'number',
  maxBatch: 'number',
  rate: { anyOf: [{ oneOf: [false] }, { options: RATE_SHAPES }] },
};

/**
 * The hash of an API key's secret, as `PublishKey.hash` takes it: SHA-256, 64 lowercase hex
 * digits. The same as `printf %s "$SECRET" | sha256sum` in a shell. Secrets should be long
 * random strings (e.g. `openssl rand -base64 32`): a fast hash is then enough.
 *
 * @example
 * const secret = crypto.randomBytes(32).toString('base64url'); // give it to the caller
 * ssePlugin('/sse', { authenticate, publish: { keys: [{ id: 'billing', hash: hashApiKey(secret) }] } });
 */
export function hashApiKey(secret: string): string {
  if (typeof secret !== 'string' || secret === '') throw new TypeError('hashApiKey takes the secret, a non-empty string');
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** One key as checked: its hash as bytes, its scope resolved, its limiter. */
export interface ApiKey {
  readonly id: string;
  readonly scope: Readonly<Required<PublishKeyScope>>;
  /** Undefined: no rate limit. */
  readonly limiter: RateLimiterMemory | undefined;
  readonly digest: Buffer;
}

const HEX64 = /^[0-9a-f]{64}$/;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The publish API's keys and limits for one plugin; the key list may be replaced at runtime. */
export class PublishKeys {
  readonly maxBodyBytes: number;
  readonly maxBatch: number;
  readonly #rate: PublishRate | false;
  #keys: readonly ApiKey[] = [];

  /** @throws TypeError for a bad option. */
  constructor(options: PublishOptions | undefined) {
    const o = options ?? { keys: [] };
    if (o === null || typeof o !== 'object') throw new TypeError('publish must be an object');
    this.maxBodyBytes = positive(o.maxBodyBytes, 'publish.maxBodyBytes', 1024 * 1024);
    this.maxBatch = Math.floor(positive(o.maxBatch, 'publish.maxBatch', 1000));
    this.#rate = o.rate ?? {};
    if (this.#rate !== false) limiterOf(this.#rate, 'publish.rate', 'default'); // checked now
    this.set(o.keys ?? []);
  }

  /** Whether any key is configured: without one the endpoints do not exist (404). */
  get enabled(): boolean {
    return this.#keys.length > 0;
  }

  /**
   * Replaces the keys (rotation without a restart). Checked whole first: a bad list throws a
   * TypeError and the old keys stay. A key that stays (same id and hash) keeps its rate count.
   */
  set(keys: readonly PublishKey[]): void {
    if (!Array.isArray(keys as unknown)) throw new TypeError('publish.keys must be an array');
    const ids = new Set<string>();
    const next = keys.map((key, i): ApiKey => {
      const name = `publish.keys[${i}]`;
      if (key === null || typeof key !== 'object') throw new TypeError(`${name} must be an object`);
      if (typeof key.id !== 'string' || key.id === '' || key.id.length > 128) throw new TypeError(`${name}.id must be a non-empty string`);
      if (ids.has(key.id)) throw new TypeError(`${name}.id ${JSON.stringify(key.id)} is used twice`);
      ids.add(key.id);
      if (typeof key.hash !== 'string' || !HEX64.test(key.hash)) {
        throw new TypeError(`${name}.hash must be 64 lowercase hex digits: hashApiKey(secret), or printf %s "$SECRET" | sha256sum`);
      }
      const old = this.#keys.find((k) => k.id === key.id && k.digest.toString('hex') === key.hash);
      const rate = key.rate === undefined ? this.#rate : key.rate;
      return {
        id: key.id,
        digest: Buffer.from(key.hash, 'hex'),
        scope: scopeOf(key.scope, name),
        limiter: old !== undefined && key.rate === undefined ? old.limiter : rate === false ? undefined : limiterOf(rate, `${name}.rate`, key.id),
      };
    });
    this.#keys = next;
  }

  /**
   * The key whose secret `authorization` (`Bearer <secret>`) carries, or 401. Every key's hash
   * is compared, in constant time, whichever matches: the time says nothing of which.
   */
  authenticate(authorization: string | undefined): ApiKey {
    const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(authorization ?? '');
    if (m === null) throw new SseUnauthorizedError('An API key is required: Authorization: Bearer <key>');
    const digest = createHash('sha256').update(m[1]!, 'utf8').digest();
    let found: ApiKey | undefined;
    for (const key of this.#keys) if (timingSafeEqual(key.digest, digest) && found === undefined) found = key;
    if (found === undefined) throw new SseUnauthorizedError('Unknown API key');
    return found;
  }

  /** Checks that `key` may `need` on `system` (403 otherwise), and refuses at once a key whose allowance is spent (429). */
  async admit(key: ApiKey, need: 'read' | 'write', system: string): Promise<void> {
    if (!key.scope.systems.includes('*') && !key.scope.systems.includes(system)) {
      throw new SseForbiddenError(`API key ${key.id} is not for the system ${system}`);
    }
    if (!key.scope[need]) throw new SseForbiddenError(`API key ${key.id} may not ${need}`);
    const limiter = key.limiter;
    if (limiter === undefined) return;
    const res = await limiter.get(key.id);
    if (res !== null && res.remainingPoints <= 0 && res.msBeforeNext > 0) throw new SseRateLimitedError('Too many publishes', res.msBeforeNext);
  }

  /** Counts `messages` against the key's rate, or throws 429 (the refused request counts nothing). */
  async take(key: ApiKey, messages: number): Promise<void> {
    const limiter = key.limiter;
    if (limiter === undefined) return;
    const cost = Math.max(1, messages);
    if (cost > limiter.points) throw new SseRateLimitedError(`A request of ${cost} messages exceeds the key's whole rate`, limiter.duration * 1000);
    try {
      await limiter.consume(key.id, cost);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      await limiter.reward(key.id, cost);
      throw new SseRateLimitedError('Too many publishes', res.msBeforeNext);
    }
  }
}

function scopeOf(scope: PublishKeyScope | undefined, name: string): Required<PublishKeyScope> {
  const s = scope ?? {};
  const list = <T extends string>(value: T[] | undefined, field: string, all: readonly T[]): T[] => {
    if (value === undefined) return [...all];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) {
      throw new TypeError(`${name}.scope.${field} must be an array of non-empty strings`);
    }
    return [...value];
  };
  const targets = list(s.targets, 'targets', PUBLISH_TARGET_KINDS);
  for (const t of targets) if (!PUBLISH_TARGET_KINDS.includes(t)) throw new TypeError(`${name}.scope.targets: unknown kind ${JSON.stringify(t)}`);
  const flag = (value: boolean | undefined, field: string): boolean => {
    if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`${name}.scope.${field} must be a boolean`);
    return value !== false;
  };
  return {
    systems: list(s.systems, 'systems', ['*']),
    targets,
    durable: flag(s.durable, 'durable'),
    read: flag(s.read, 'read'),
    write: flag(s.write, 'write'),
  };
}

function limiterOf(rate: PublishRate, name: string, prefix: string): RateLimiterMemory {
  if (rate === null || typeof rate !== 'object') throw new TypeError(`${name} must be an object or false`);
  const points = Math.floor(positive(rate.messages, `${name}.messages`, 1000));
  const windowMs = positive(rate.windowMs, `${name}.windowMs`, 1000);
  if (windowMs > MAX_TIMER_MS) throw new TypeError(`${name}.windowMs must be at most ${MAX_TIMER_MS}`);
  return new RateLimiterMemory({ points: Math.max(1, points), duration: windowMs / 1000, keyPrefix: `p:${prefix}` });
}
