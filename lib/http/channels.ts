import type { Context } from 'koa';
import { parseChannelNames } from '../core/channels.js';
import { SseBadRequestError, SseChannelDeniedError, SseForbiddenError } from '../core/errors.js';
import type { SseUser } from '../core/user.js';
import type { ConnectionCall, UserCall } from './call.js';
import { ok, type EndpointEnv } from './endpoint.js';

/**
 * `POST {base}/connect/join.do` with `{connectionId, channels: [names]}`: joins the caller's
 * own connection to every channel `authorizeChannel` allows, all or nothing. Answers
 * `{channels: [current runtime channels]}`; 403 `ERR_SSE_CHANNEL_DENIED` (naming the first
 * channel refused), 400 `ERR_SSE_TOO_MANY_CHANNELS` past `maxChannelsPerConnection`, 429
 * `ERR_SSE_RATE_LIMITED` past `channelRateLimit` (also for `leave.do`).
 */
export async function join(call: UserCall): Promise<void> {
  const { ctx, env, user } = call;
  const { conn, channels } = await readChange(call);
  const denied = await deniedChannel(ctx, env, user, channels);
  if (denied !== undefined) throw new SseChannelDeniedError(denied);
  ok(ctx, env, { channels: await env.hub.changeConnectionChannels(conn.id, channels, true) });
}

/** `POST {base}/connect/leave.do`: leaves runtime channels (no permission needed). Answers `{channels: [current]}`. */
export async function leave(call: UserCall): Promise<void> {
  const { ctx, env } = call;
  const { conn, channels } = await readChange(call);
  ok(ctx, env, { channels: await env.hub.changeConnectionChannels(conn.id, channels, false) });
}

/**
 * `GET {base}/connect/presence.json?connectionId=…&channel=…`: who is in a channel the
 * caller's own connection is a member of (403 otherwise). Answers `{channel, users: [{userId,
 * connections}], total}`, users capped at `presence.maxListed`.
 */
export async function presence({ ctx, env, connection }: ConnectionCall): Promise<void> {
  const [channel] = parseChannelNames(single(ctx.query.channel), false);
  if (channel === undefined) throw new SseBadRequestError('channel is required');
  const info = connection.toInfo();
  if (info.channel !== channel && info.channels?.includes(channel) !== true)
    throw new SseForbiddenError('This connection is not a member of that channel');
  ok(ctx, env, await env.hub.presence(channel));
}

async function readChange(call: UserCall) {
  // A user already over the limit is refused before the body and the connection are read.
  await call.env.channelRateLimit.admit(call.user);
  const body = await call.json();
  if (!Array.isArray(body.channels) || body.channels.length === 0) throw new SseBadRequestError('channels is required: an array of channel names');
  const channels = parseChannelNames(body.channels, false);
  const conn = await call.ownConnection(body.connectionId);
  await call.env.channelRateLimit.take(call.user, conn.id, channels.length);
  return { conn, channels };
}

/**
 * The first of `channels` that `authorizeChannel` refuses (all are asked at once), or
 * undefined when every one is allowed. Absent hook: every channel is refused.
 */
export async function deniedChannel(ctx: Context, env: EndpointEnv, user: SseUser, channels: readonly string[]): Promise<string | undefined> {
  const allowed = await authorizeChannels(ctx, env, user, channels);
  return channels.find((_, i) => !allowed[i]);
}

/** `authorizeChannel` for each channel, in parallel: true only for a literal `true`. */
export async function authorizeChannels(ctx: Context, env: EndpointEnv, user: SseUser, channels: readonly string[]): Promise<boolean[]> {
  const hook = env.options.authorizeChannel;
  if (hook === undefined) return channels.map(() => false);
  return Promise.all(channels.map(async (channel) => (await hook(ctx, user, channel)) === true));
}

function single(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}
