import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { SseRateLimitedError } from '../core/errors.js';
import { positive } from '../core/option-checks.js';
import type { ShapesOf } from '../core/option-shape.js';

/**
 * A bucket per connection: `perSecond` calls refill it each second, and up to `burst` more
 * may be spent at once (refilled over `burst / perSecond` seconds): rate-limiter-flexible's
 * `BurstyRateLimiter`, a token bucket in two windows.
 */
export interface RequestBucket {
  /** Calls per second, sustained. */
  perSecond?: number;
  /** Calls allowed at once beyond `perSecond`. */
  burst?: number;
}

/**
 * Per-connection rate limits of what a page sends: `message/*.do`, `upload/*.do` and
 * `ack.do`. A call past its bucket does nothing and is answered `429 ERR_SSE_RATE_LIMITED`
 * with `Retry-After` (whole seconds; also `data.retryAfter`): the browser client sends it
 * again then, in order. Counted in memory on each node. `false` for one kind turns its limit
 * off. Server-side calls are not limited.
 */
export interface RequestRateLimitOptions {
  /** `message/*.do`. Default `{ perSecond: 20, burst: 40 }`. */
  message?: RequestBucket | false;
  /** `upload/*.do`. Default `{ perSecond: 2, burst: 10 }`. */
  upload?: RequestBucket | false;
  /** `ack.do` (the browser client batches acks: one call per 50 ms at most). Default `{ perSecond: 20, burst: 100 }`. */
  ack?: RequestBucket | false;
}

/** The kinds of page calls limited. */
export type RequestKind = keyof RequestRateLimitOptions;

const BUCKET_SHAPES: ShapesOf<RequestBucket> = { perSecond: 'number', burst: 'number' };
const BUCKET: { anyOf: [{ oneOf: [false] }, { options: ShapesOf<RequestBucket> }] } = { anyOf: [{ oneOf: [false] }, { options: BUCKET_SHAPES }] };

/** What each of {@link RequestRateLimitOptions} may be (checked with the plugin's options). */
export const REQUEST_RATE_LIMIT_SHAPES: ShapesOf<RequestRateLimitOptions> = { message: BUCKET, upload: BUCKET, ack: BUCKET };

const DEFAULTS: Record<RequestKind, Required<RequestBucket>> = {
  message: { perSecond: 20, burst: 40 },
  upload: { perSecond: 2, burst: 10 },
  ack: { perSecond: 20, burst: 100 },
};

/** The limits of one plugin: a bucket per connection and kind, forgotten once its windows end. */
export class RequestRateLimit {
  readonly #limiters = new Map<RequestKind, BurstyRateLimiter>();

  /** @throws TypeError for a bad option (`false` turns all the limits off). */
  constructor(options: RequestRateLimitOptions | false | undefined) {
    if (options === false) return;
    if (options !== undefined && (options === null || typeof options !== 'object'))
      throw new TypeError('requestRateLimit must be an object or false');
    for (const kind of Object.keys(DEFAULTS) as RequestKind[]) {
      const given = options?.[kind];
      if (given === false) continue;
      const name = `requestRateLimit.${kind}`;
      if (given !== undefined && (given === null || typeof given !== 'object')) throw new TypeError(`${name} must be an object or false`);
      const perSecond = Math.max(1, Math.floor(positive(given?.perSecond, `${name}.perSecond`, DEFAULTS[kind].perSecond)));
      const burst = Math.max(1, Math.floor(positive(given?.burst, `${name}.burst`, DEFAULTS[kind].burst)));
      this.#limiters.set(
        kind,
        new BurstyRateLimiter(
          new RateLimiterMemory({ points: perSecond, duration: 1, keyPrefix: kind }),
          new RateLimiterMemory({ points: burst, duration: Math.max(1, Math.ceil(burst / perSecond)), keyPrefix: `${kind}-burst` }),
        ),
      );
    }
  }

  /** Takes one call of `kind` on `connectionId`, or throws {@link SseRateLimitedError}. */
  async take(kind: RequestKind, connectionId: string): Promise<void> {
    const limiter = this.#limiters.get(kind);
    if (limiter === undefined) return;
    try {
      await limiter.consume(connectionId, 1);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      throw new SseRateLimitedError(`Too many ${kind} calls on this connection`, res.msBeforeNext);
    }
  }
}
