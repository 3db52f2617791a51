import type { HttpAnswer } from './http.js';

/** The `presence.json` answer: who is in a channel, cluster-wide. */
export interface SsePresence {
  channel: string;
  /** Members by user, with how many connections each has in the channel (the server may cap the list). */
  users: { userId: string; connections: number }[];
  /** All members, also those past the list's cap. */
  total: number;
}

/** The `sse-presence` event's data (for members of channels the server opted in). */
export interface SsePresenceEvent {
  channel: string;
  userId: string;
  action: 'join' | 'leave';
}

// The server's rule for a channel name: 1-256 characters, no control characters; no comma (the connect list).
// eslint-disable-next-line no-control-regex
const CHANNEL = /^[^\u0000-\u001f\u007f,]{1,256}$/;

/** Checks `join` / `leave` arguments at once (a TypeError, before any request). */
export function checkChannels(channels: readonly unknown[]): string[] {
  if (channels.length === 0) throw new TypeError('Name at least one channel');
  for (const c of channels) if (typeof c !== 'string' || !CHANNEL.test(c)) throw new TypeError(`Invalid channel ${JSON.stringify(c)}`);
  return [...new Set(channels as string[])];
}

/** `data.channels` of an answer or event payload, if it is a list of strings. */
export function channelList(data: unknown): string[] | undefined {
  const list = (data as { channels?: unknown } | null | undefined)?.channels;
  return Array.isArray(list) && list.every((c) => typeof c === 'string') ? (list as string[]) : undefined;
}

/** `data.channels` of a JSON envelope answer. */
export function answerChannels(answer: HttpAnswer): string[] | undefined {
  return channelList((answer.body as { data?: unknown } | null)?.data);
}

/**
 * The channels this page holds (joined at runtime), kept across reconnects: the connect
 * asks for them again (`channels`), and what the server answers (`connect-finish`,
 * `sse-channels`, join / leave answers) is adopted. `server` is the connection's own list,
 * which with shared tabs is the union of every tab's; a list the server pushes keeps this
 * page's channels that are still in it and adds the ones the server itself joined.
 */
export class ChannelMembership {
  #own = new Set<string>();
  #server: string[] = [];

  /** This page's channels, in join order. */
  get list(): string[] {
    return [...this.#own];
  }

  /** This page's list after a join or leave. */
  setOwn(own: readonly string[]): void {
    this.#own = new Set(own);
  }

  /** The connection's list as last known (with shared tabs the leader tells it). */
  setServer(server: readonly string[]): void {
    this.#server = [...server];
  }

  /** `connect-finish`: the server re-admitted `server` of the channels asked for; ours not in it are gone. */
  admitted(server: readonly string[]): void {
    const now = new Set(server);
    this.#own = new Set([...this.#own].filter((c) => now.has(c)));
    this.#server = [...server];
  }

  /** `sse-channels`, the server's own change: keep ours still in it, add what it joined by itself. */
  adopt(server: readonly string[]): void {
    const before = new Set(this.#server);
    const now = new Set(server);
    this.#own = new Set([...[...this.#own].filter((c) => now.has(c)), ...server.filter((c) => !before.has(c))]);
    this.#server = [...server];
  }

  /** Forgets everything (another system after `switchURL`). */
  clear(): void {
    this.#own.clear();
    this.#server = [];
  }
}
