import { SseBadRequestError } from './errors.js';

/** Most names one request may carry (a join, a leave, the connect parameter `channels`). */
export const MAX_CHANNELS_PER_REQUEST = 256;

/** A channel name: 1-256 characters, no control characters (the rule of the connect parameter `channel`). */
// eslint-disable-next-line no-control-regex -- the control characters are what it refuses
const CHANNEL = /^[^\u0000-\u001f\u007f]{1,256}$/;

/** Whether `name` is a valid channel name. */
export function isChannelName(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL.test(name);
}

/**
 * A list of channel names from a request: an array of names, or one comma-separated string
 * (the connect parameter `channels`, like `listener`; a name that contains a comma must come
 * as a repeated parameter or a JSON array). Distinct names in order. Throws
 * {@link SseBadRequestError} for an invalid name, a non-string or more than 256 names.
 */
export function parseChannelNames(value: unknown, splitCommas: boolean): string[] {
  if (value === undefined || value === null || value === '') return [];
  const raw: unknown[] = Array.isArray(value) ? value : typeof value === 'string' && splitCommas ? value.split(',') : [value];
  if (raw.length > MAX_CHANNELS_PER_REQUEST) throw new SseBadRequestError(`At most ${MAX_CHANNELS_PER_REQUEST} channels per request`);
  const names = new Set<string>();
  for (const item of raw) {
    if (typeof item !== 'string') throw new SseBadRequestError('Channel names must be strings');
    if (splitCommas && item === '') continue;
    if (!CHANNEL.test(item)) throw new SseBadRequestError('Invalid channel name: 1-256 characters, no control characters');
    names.add(item);
  }
  return [...names];
}

/** Checks channel names given to the server API; a TypeError names the bad one. Distinct names in order. */
export function channelNamesOf(channels: string | readonly string[]): string[] {
  const list = typeof channels === 'string' ? [channels] : channels;
  if (!Array.isArray(list)) throw new TypeError('channels must be a string or an array of strings');
  const names = new Set<string>();
  for (const name of list as readonly unknown[]) {
    if (!isChannelName(name))
      throw new TypeError(`Invalid channel name ${JSON.stringify(String(name)).slice(0, 80)}: 1-256 characters, no control characters`);
    names.add(name);
  }
  return [...names];
}

/**
 * Whose connections a server-side join or leave changes, cluster-wide: one connection, every
 * connection of a user, or every connection of an access token.
 */
export type ChannelTarget = { connectionId: string } | { userId: string | number | bigint } | { accessToken: string };

/** A user in a channel's presence: their id and how many of their connections are members. */
export interface PresenceUser {
  userId: string;
  connections: number;
}

/** Who is in a channel, cluster-wide (`hub.presence`, `GET {base}/connect/presence.json`). */
export interface ChannelPresence {
  channel: string;
  /** Users with a connection in the channel, at most `limit` (by user id); anonymous connections are not listed. */
  users: PresenceUser[];
  /** Distinct users in the channel, all of them (may exceed `users.length`). */
  total: number;
}

/** Payload of the hub's `presence-join` / `presence-leave` events. */
export interface PresenceChange {
  channel: string;
  userId: string;
}

/** Data of the `sse-presence` event sent to a channel's members when the channel is opted in (`presence.notifyMembers`). */
export interface PresenceNotice extends PresenceChange {
  action: 'join' | 'leave';
}

/**
 * One node's view of a user's membership in a channel, asked by the node that must decide
 * whether a `presence-join` / `presence-leave` is due (see `PresenceTracker` in the cluster layer).
 */
export interface MemberState {
  /** When the user's earliest live connection here joined the channel (ms since the epoch), or null. */
  since: number | null;
  /** When the user's last connection here left the channel, while its leave waits out `leaveDelayMs`; else null. */
  leftAt: number | null;
  /** When the user left, for a leave from the channel that this node announced within the last `leaveDelayMs`; else null. */
  announcedLeftAt: number | null;
}
