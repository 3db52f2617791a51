import type { Context } from 'koa';
import type { ConnectionHandle } from '../core/connection-handle.js';
import { SseBadRequestError, SseCrossSiteError, SseForbiddenError, SseUnauthorizedError, SseUnknownConnectionError } from '../core/errors.js';
import { toJson } from '../core/frame.js';
import { hashToken } from '../core/token-hash.js';
import { describe } from '../core/option-shape.js';
import { keyOf, type SseUser } from '../core/user.js';
import type { Hub } from '../hub.js';
import type { ChannelRateLimit } from './channel-rate-limit.js';
import type { SsePluginOptions } from './plugin-options.js';
import type { PublishKeys } from './publish-keys.js';
import type { RequestRateLimit } from './request-rate-limit.js';
import type { ServerHeaders } from './server-headers.js';

/** Plugin options with defaults applied, as the endpoints read them. */
export interface EndpointOptions extends SsePluginOptions {
  wrapOkResponse: (result: unknown) => unknown;
  redactUser: (user: SseUser) => unknown;
  mapToConnectionVO: NonNullable<SsePluginOptions['mapToConnectionVO']>;
  mapToMessageVO: NonNullable<SsePluginOptions['mapToMessageVO']>;
  jsonLimit: number;
  uploadLimit: number;
  uploadMaxFiles: number;
  adminOrigins: string[];
}

/** What every endpoint handler receives besides the Koa context. */
export interface EndpointEnv {
  hub: Hub;
  options: EndpointOptions;
  /** The headers every answer carries (the router sets them; a stream's head carries them itself). */
  headers: ServerHeaders;
  /** The rate limits of `join.do` / `leave.do` (`channelRateLimit`). */
  channelRateLimit: ChannelRateLimit;
  /** The per-connection limits of `message/*.do`, `upload/*.do` and `ack.do` (`requestRateLimit`). */
  requestRateLimit: RequestRateLimit;
  /** The publish API's keys and limits (`publish`); without keys its routes do not exist. */
  publish: PublishKeys;
}

/** Runs `authenticate`; 401 when it gives no user. */
export async function requireUser(ctx: Context, env: EndpointEnv): Promise<SseUser> {
  return checkedUser(await env.options.authenticate(ctx));
}

/**
 * {@link requireUser} without a promise when `authenticate` answers synchronously (the
 * connect path: an async function and its promise per stream, ~0.5 µs, for nothing). The
 * same checks; a synchronous throw is the caller's (an async endpoint turns it into a rejection).
 */
export function requireUserNow(ctx: Context, env: EndpointEnv): SseUser | Promise<SseUser> {
  const result = env.options.authenticate(ctx);
  return isThenable(result) ? Promise.resolve(result).then(checkedUser) : checkedUser(result);
}

/** Keys that look like a user id under another name: `{ userId: 7 }` would make the stream anonymous. */
const MISNAMED_ID = /^(user_?id|uid|user_?no|account_?id)$/i;

function checkedUser(user: SseUser | null | undefined): SseUser {
  if (user === null || user === undefined) throw new SseUnauthorizedError();
  if (typeof user !== 'object') throw new TypeError('authenticate must return an object, null or undefined');
  if (user.id !== undefined && user.id !== null) {
    const id: unknown = user.id;
    const usable = (typeof id === 'string' && id !== '') || (typeof id === 'number' && Number.isFinite(id)) || typeof id === 'bigint';
    if (!usable) {
      throw new TypeError(
        `authenticate returned a user whose id is not usable (${describe(id)}): give a non-empty string or a number, or id: null for an anonymous user`,
      );
    }
    return user;
  }
  if (user.id === undefined) {
    // Anonymous must be meant: `id: null`, or a login known by its access token.
    const misnamed = Object.keys(user).find((k) => MISNAMED_ID.test(k));
    if (misnamed !== undefined) {
      throw new TypeError(`authenticate returned { ${misnamed}: … } without id: the user id goes in \`id\` (id: null for an anonymous user)`);
    }
    if (keyOf(user.accessToken) === undefined) {
      throw new TypeError('authenticate returned a user without id or accessToken: give its id, or id: null for an anonymous user');
    }
  }
  return user;
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/**
 * Refuses a request that a browser says comes from another site (`Sec-Fetch-Site`), or whose
 * `Origin` is neither this server's nor one of `adminOrigins`: a page of another site visited
 * by a logged-in admin must not act with the admin's cookies.
 */
export function assertSameSite(ctx: Context, env: EndpointEnv): void {
  const origin = ctx.get('origin');
  // Not ctx.origin: in Koa 3 that is the request's Origin header, not this server's origin.
  const own = `${ctx.protocol}://${ctx.host}`;
  const trusted = origin !== '' && (origin === own || env.options.adminOrigins.includes(origin));
  const site = ctx.get('sec-fetch-site');
  if ((site === 'cross-site' || site === 'same-site') && !trusted) throw new SseCrossSiteError();
  if (origin !== '' && !trusted) throw new SseCrossSiteError();
}

/** Authenticates, then asks `authorizeAdmin` (absent means nobody is admin). Refuses cross-site calls first. */
export async function requireAdmin(ctx: Context, env: EndpointEnv): Promise<SseUser> {
  assertSameSite(ctx, env);
  const user = await requireUser(ctx, env);
  const allowed = env.options.authorizeAdmin ? await env.options.authorizeAdmin(ctx, user) : false;
  if (allowed !== true) throw new SseForbiddenError('Admin rights required');
  return user;
}

/** Reads a connection id parameter: a non-empty string of sane length. */
export function connectionIdOf(value: unknown): string {
  if (Array.isArray(value)) value = value[0];
  if (typeof value !== 'string' || value === '' || value.length > 128) {
    throw new SseBadRequestError('connectionId is required');
  }
  return value;
}

/**
 * `user`'s own live connection `id`. Another user's connection is refused (403) even with its
 * id: ids travel in URLs and logs, so knowing one must not be enough to act as its owner. A
 * connection whose user has neither id nor token is matched by its id alone.
 */
export async function requireOwnConnection(hub: Hub, user: SseUser, id: string): Promise<ConnectionHandle> {
  // This node's own connection without a cluster round trip (the common case). In a cluster the
  // stream may be held by another node (the load balancer chose it).
  const conn = hub.getLocalConnection(id) ?? (await hub.findConnection(id, keyOf(user.accessToken)));
  if (conn === undefined) throw new SseUnknownConnectionError(id);
  // A remote snapshot shows only its token's hash.
  const tokenHash = conn.remote ? conn.toInfo().accessTokenHash : conn.accessToken === undefined ? undefined : hashToken(conn.accessToken);
  assertOwner(user, conn.userId, conn.tenantId, tokenHash);
  return conn;
}

function assertOwner(user: SseUser, userId: string | undefined, tenantId: string | undefined, tokenHash: string | undefined): void {
  const token = keyOf(user.accessToken);
  // The same user id in another tenant is another person where ids are per tenant.
  const owns =
    tenantId !== keyOf(user.tenantId)
      ? false
      : userId !== undefined
        ? userId === keyOf(user.id)
        : tokenHash !== undefined
          ? token !== undefined && hashToken(token) === tokenHash
          : true;
  if (!owns) throw new SseForbiddenError('This connection belongs to another user');
}

/** Answers a result through the configured envelope. */
export function ok(ctx: Context, env: EndpointEnv, result: unknown): void {
  ctx.status = 200;
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = toJson(env.options.wrapOkResponse(result));
}
