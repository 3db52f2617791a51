import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { SseRateLimitedError } from '../core/errors.js';
import { positive } from '../core/option-checks.js';
import type { ShapesOf } from '../core/option-shape.js';
import { keyOf, type SseUser } from '../core/user.js';

/**
 * Rate limits of a page's own channel changes (`join.do`, `leave.do`). Each channel name in
 * a call counts once, joined or left (a call of 64 names costs 64); a call past a limit
 * changes nothing and is answered `429 ERR_SSE_RATE_LIMITED` with `Retry-After` (seconds,
 * also as `data.retryAfter`). Counted in memory on each node: a user whose calls a load
 * balancer spreads over several nodes gets each node's allowance. Server-side changes
 * (`hub.joinChannel` / `leaveChannel`) are not limited.
 */
export interface ChannelRateLimitOptions {
  /**
   * Channel names one connection may join or leave per `windowMs`. Default `128`: the default
   * `maxChannelsPerConnection` (64) joined and left again.
   */
  perConnection?: number;
  /**
   * Channel names all the connections of one user (tenant and user id, else the access token)
   * may join or leave per `windowMs` on one node. Anonymous connections have only the
   * per-connection limit. Default `512`.
   */
  perUser?: number;
  /**
   * The window in ms: a connection's or user's count starts at its first change and is
   * forgotten `windowMs` later (so memory holds only those that changed within the window).
   * Default `10000`.
   */
  windowMs?: number;
}

/** What each of {@link ChannelRateLimitOptions} may be (checked with the plugin's options). */
export const CHANNEL_RATE_LIMIT_SHAPES: ShapesOf<ChannelRateLimitOptions> = {
  perConnection: 'number',
  perUser: 'number',
  windowMs: 'number',
};

/** The limits of one plugin: one counter per connection and one per user, each dropped when its window ends. */
export class ChannelRateLimit {
  readonly #perConnection: RateLimiterMemory | undefined;
  readonly #perUser: RateLimiterMemory | undefined;

  /** @throws TypeError for a bad option (`false` turns the limits off). */
  constructor(options: ChannelRateLimitOptions | false | undefined) {
    if (options === false) return;
    if (options !== undefined && (options === null || typeof options !== 'object'))
      throw new TypeError('channelRateLimit must be an object or false');
    const o = options ?? {};
    const duration = bounded(o.windowMs, 'windowMs', 10_000, MAX_TIMER_MS) / 1000;
    this.#perConnection = new RateLimiterMemory({
      points: Math.max(1, Math.floor(bounded(o.perConnection, 'perConnection', 128))),
      duration,
      keyPrefix: 'c',
    });
    this.#perUser = new RateLimiterMemory({ points: Math.max(1, Math.floor(bounded(o.perUser, 'perUser', 512))), duration, keyPrefix: 'u' });
  }

  /**
   * Refuses at once a user whose allowance is spent, before the call's body is read or its
   * connection looked up (which may ask the peers): a client that ignores `Retry-After` costs
   * an authentication and this look-up per call, no more. Takes nothing.
   */
  async admit(user: SseUser): Promise<void> {
    const users = this.#perUser;
    if (users === undefined) return;
    const userKey = userKeyOf(user);
    if (userKey === undefined) return;
    const res = await users.get(userKey);
    if (res !== null && res.remainingPoints <= 0 && res.msBeforeNext > 0) {
      throw new SseRateLimitedError('Too many channel changes', res.msBeforeNext);
    }
  }

  /**
   * Counts a change of `names` channels by `user` on `connectionId`, or throws
   * {@link SseRateLimitedError} when a limit is reached; a refused call counts against neither.
   */
  async take(user: SseUser, connectionId: string, names: number): Promise<void> {
    const connections = this.#perConnection;
    const users = this.#perUser;
    if (connections === undefined || users === undefined) return;
    const perConnection = await consume(connections, connectionId, names);
    const userKey = userKeyOf(user);
    if (userKey === undefined) return;
    try {
      await consume(users, userKey, names);
    } catch (err) {
      await connections.reward(connectionId, perConnection);
      throw err;
    }
  }
}

/** The longest delay a Node timer takes (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A positive option at most `max`, or `fallback`; a TypeError names it otherwise. */
function bounded(value: number | undefined, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = positive(value, `channelRateLimit.${name}`, fallback);
  if (!(n <= max)) throw new TypeError(`channelRateLimit.${name} must be at most ${max} (channelRateLimit: false turns the limits off), got ${n}`);
  return n;
}

/**
 * Takes `names` points (at least 1; a call larger than the whole allowance takes all of it) and
 * answers how many; refused, gives them back (a refused call costs nothing) and throws.
 */
async function consume(limiter: RateLimiterMemory, key: string, names: number): Promise<number> {
  const cost = Math.min(limiter.points, Math.max(1, names));
  try {
    await limiter.consume(key, cost);
    return cost;
  } catch (res) {
    if (!(res instanceof RateLimiterRes)) throw res;
    await limiter.reward(key, cost);
    throw new SseRateLimitedError('Too many channel changes', res.msBeforeNext);
  }
}

/** Tenant and user id, else the access token; undefined for an anonymous user. */
function userKeyOf(user: SseUser): string | undefined {
  const id = keyOf(user.id);
  if (id !== undefined) return JSON.stringify([keyOf(user.tenantId) ?? null, id]);
  const token = keyOf(user.accessToken);
  return token === undefined ? undefined : JSON.stringify(['token', token]);
}
