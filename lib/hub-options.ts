import { CLUSTER_OPTION_SHAPES, type ClusterOptions } from './cluster/cluster-options.js';
import { fraction, positive } from './core/option-checks.js';
import { checkOptionShapes, type ShapesOf } from './core/option-shape.js';
import { keepaliveChoiceOf, keepaliveZeroOf, type KeepaliveChoice, type KeepaliveZero } from './local/lifetime.js';
import type { LocalNodeOptions } from './local/local-node.js';
import { RECOVERY_OPTION_SHAPES, type RecoveryOptions } from './local/recovery-options.js';
import type { QosOptions } from './qos/qos.js';
import { QOS_OPTION_SHAPES } from './qos/qos-options.js';

/** Options of a hub: the part of {@link SsePluginOptions} that does not need Koa. */
export interface HubOptions {
  /**
   * Name of the system, e.g. `hr`. The Redis engine (`cluster.redis`, `qos.redis`) keeps its
   * keys under `sse:<name>`, and nodes on one Redis and prefix are one system: there a name
   * must be given, here or as the engine's prefix (`cluster.redisPrefix` / `cluster.group`,
   * `qos.redisPrefix`), else the hub refuses to start (TypeError), so that two apps that kept
   * the default name never merge without a word. Default: the last segment of the plugin's
   * base path, else `default`.
   */
  name?: string;
  /** Interval of the heartbeat comment, in ms. Default `15000`. */
  heartbeatMs?: number;
  /**
   * How long bytes written to a stream (a heartbeat, an event) may stay unacknowledged by the
   * browser's machine before the stream is closed as dead, in ms: the socket's
   * `TCP_USER_TIMEOUT` (Linux). A browser that vanished without closing its connection (power
   * loss, cable pulled, NAT or Wi-Fi drop) is then closed at most `heartbeatMs` +
   * `deadStreamTimeoutMs` after it went (40 s with the defaults) instead of after TCP's
   * retransmissions run out (~15 min), and leaves `isOnline`, counts and presence. Behind a
   * proxy the socket is the proxy's: see docs/clusters.md, "When a browser or a node
   * vanishes". `0` turns it off. Outside Linux it cannot
   * be set: an explicit value is then reported once (`ERR_SSE_UNSUPPORTED`), the default is
   * silently off. Default `heartbeatMs + 10000`.
   */
  deadStreamTimeoutMs?: number;
  /** Reconnect delay told to browsers (`retry:` and `connect-finish.reconnectTime`), in ms. Default `5000`. */
  reconnectTimeMs?: number;
  /**
   * Longest a stream stays open before the server closes it with `reason: 'expired',
   * reconnect: true`, in ms. A client's `keepaliveTime` can only shorten it. Default 15 min.
   */
  maxLifetimeMs?: number;
  /** Shortest lifetime a client may request, in ms. Default `10000` (or `maxLifetimeMs` if smaller). */
  minLifetimeMs?: number;
  /**
   * Who sets a stream's lifetime, as the Java library's `choseKeepaliveTime`: `'client'` (its
   * `keepaliveTime` connect parameter, else `maxLifetimeMs`), `'server'` (always
   * `maxLifetimeMs`), or `(clientKeepaliveMs, maxLifetimeMs) => ms`. The result is clamped to
   * [`minLifetimeMs`, `maxLifetimeMs`]. Default `'client'`.
   */
  keepaliveChoice?: KeepaliveChoice;
  /**
   * What a chosen lifetime of 0 means (a client's `keepaliveTime=0`, or a `keepaliveChoice`
   * function answering 0): `'max'`, the longest the server allows (`maxLifetimeMs`), or
   * `'never'`, a stream that never expires (the Java library's `keepaliveTime` 0: its
   * `connect-finish` then says `expiresAt: null`). Default `'max'`: a bounded lifetime ends a
   * revoked login's stream, spreads streams over the nodes after a deploy, and outlives no proxy
   * timeout.
   */
  keepaliveZero?: KeepaliveZero;
  /**
   * Random fraction taken off each lifetime so that a deploy's worth of clients do not all
   * reconnect in the same second. `0` disables. Default `0.1`.
   */
  lifetimeJitter?: number;
  /** Most streams per user + clientId + domain + tenant; the oldest is evicted. Default `3`. */
  clientIdMaxConnections?: number;
  /**
   * Most streams one user id holds on this node; the next connect is refused with
   * `429 ERR_SSE_TOO_MANY_CONNECTIONS` (the client's existing streams stay). A bound on what
   * one account can make the server hold (a stream costs ~12 KB); raise it for users who
   * really keep more tabs or devices open (the browser client shares one stream across a
   * browser's tabs; the Java page script opens one per tab), `Infinity` for no cap.
   * Default `32`.
   */
  maxConnectionsPerUser?: number;
  /** Most streams on this hub (429 beyond). Default `Infinity`. */
  maxConnections?: number;
  /**
   * Bytes a connection may have queued in user space before it is closed as a slow reader
   * (`reason: 'slow'`). Default 1 MiB.
   */
  writeBufferLimit?: number;
  /**
   * Most event names one connection may listen to, in total (connect parameter plus every
   * `addListener.do`). Past it an addition is refused with `ERR_SSE_TOO_MANY_LISTENERS` (400)
   * and nothing changes. Default `256`.
   */
  maxListenersPerConnection?: number;
  /**
   * Most channels one connection joins at runtime (`join.do`, `hub.joinChannel`, the connect
   * parameter `channels`; the fixed `channel` does not count). Past it a page's join is
   * refused with `ERR_SSE_TOO_MANY_CHANNELS` (400) and nothing changes; a server-side join
   * leaves that connection as it is. Default `64`.
   */
  maxChannelsPerConnection?: number;
  /** Presence per channel: who is in it, and join / leave news. */
  presence?: PresenceOptions;
  /** Sent in `connect-finish.version`. Default: this package's version. */
  version?: string;
  /**
   * The recovery window of ordinary sends (see {@link RecoveryOptions}): a page that comes back
   * gets the events it missed, or `connect-finish.recovered: false`. `false`: off. Default: on,
   * 2 minutes, 32 MiB per node.
   */
  recovery?: RecoveryOptions | false;
  /** Durable at-least-once delivery through SQLite or Redis (`hub.qos`; see {@link QosOptions}). Default: off. */
  qos?: QosOptions;
  /** Join a cluster of nodes that act as one hub: over HTTP on a LAN, or over Redis (`cluster.redis`). Default: off. */
  cluster?: ClusterOptions;
}

/** Options of presence per channel (`hub.presence`, `presence-join` / `presence-leave`, `sse-presence`). */
export interface PresenceOptions {
  /**
   * Which channels' members are told of joins and leaves, as the event `sse-presence` with
   * data `{channel, userId, action: 'join' | 'leave'}` (cluster-wide). Default: no channel.
   */
  notifyMembers?: (channel: string) => boolean;
  /**
   * How long a user's leave from a channel waits before it counts, in ms: a reconnect within
   * it (the same user back in the channel, on any node) cancels it, so presence does not
   * flap. Must exceed `reconnectTimeMs`. Default `10000` (or twice `reconnectTimeMs` if that is more).
   */
  leaveDelayMs?: number;
  /** Most users listed in one presence answer (`hub.presence` default limit, `presence.json`). Default `100`. */
  maxListed?: number;
}

const PRESENCE_OPTION_SHAPES: ShapesOf<PresenceOptions> = {
  notifyMembers: 'function',
  leaveDelayMs: 'number',
  maxListed: 'number',
};

/** What each hub option may be; the plugin adds its own (http/plugin-options.ts). */
export const HUB_OPTION_SHAPES: ShapesOf<HubOptions> = {
  name: 'string',
  heartbeatMs: 'number',
  deadStreamTimeoutMs: 'number',
  reconnectTimeMs: 'number',
  maxLifetimeMs: 'number',
  minLifetimeMs: 'number',
  keepaliveChoice: { oneOf: ['client', 'server'], or: 'function' },
  keepaliveZero: { oneOf: ['max', 'never'] },
  lifetimeJitter: 'number',
  clientIdMaxConnections: 'number',
  maxConnectionsPerUser: 'number',
  maxConnections: 'number',
  writeBufferLimit: 'number',
  maxListenersPerConnection: 'number',
  maxChannelsPerConnection: 'number',
  presence: { options: PRESENCE_OPTION_SHAPES },
  version: 'string',
  recovery: { oneOf: [false], or: { options: RECOVERY_OPTION_SHAPES } },
  qos: { options: QOS_OPTION_SHAPES },
  cluster: { options: CLUSTER_OPTION_SHAPES },
};

/**
 * Checks the keys and types of hub options, nested ones included (`createHub()`; the plugin
 * checks its own superset): an unknown key names the nearest known one.
 */
export function checkHubOptions(options: unknown): void {
  checkOptionShapes(options, HUB_OPTION_SHAPES, '');
}

/** Presence options with every default applied. */
export interface ResolvedPresenceOptions {
  notifyMembers: (channel: string) => boolean;
  leaveDelayMs: number;
  maxListed: number;
}

/** Applies the presence defaults; a TypeError names a bad option. */
export function resolvePresenceOptions(options: PresenceOptions | undefined, reconnectTimeMs: number): ResolvedPresenceOptions {
  const o = options ?? {};
  if (typeof o !== 'object') throw new TypeError('presence must be an object');
  if (o.notifyMembers !== undefined && typeof o.notifyMembers !== 'function') throw new TypeError('presence.notifyMembers must be a function');
  const leaveDelayMs = positive(o.leaveDelayMs, 'presence.leaveDelayMs', Math.max(10_000, 2 * reconnectTimeMs));
  if (leaveDelayMs <= reconnectTimeMs) {
    throw new TypeError(
      `presence.leaveDelayMs (${leaveDelayMs}) must exceed reconnectTimeMs (${reconnectTimeMs}): a reconnect would count as a leave`,
    );
  }
  return {
    notifyMembers: o.notifyMembers ?? (() => false),
    leaveDelayMs,
    maxListed: Math.floor(positive(o.maxListed, 'presence.maxListed', 100)),
  };
}

/** Most a socket's TCP_USER_TIMEOUT holds (a C int of ms). */
const MAX_USER_TIMEOUT_MS = 2_147_483_647;

/** `deadStreamTimeoutMs`: 0 (off) or whole ms; a heartbeat plus 10 s by default. */
function deadStreamTimeout(value: number | undefined, heartbeatMs: number): number {
  if (value === undefined) return Math.min(Math.round(heartbeatMs + 10_000), MAX_USER_TIMEOUT_MS);
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_USER_TIMEOUT_MS)) {
    throw new TypeError(`deadStreamTimeoutMs must be 0 (off) or a number of ms up to ${MAX_USER_TIMEOUT_MS}, got ${String(value)}`);
  }
  return Math.round(value);
}

/** The default of `maxConnectionsPerUser`. */
export const DEFAULT_MAX_CONNECTIONS_PER_USER = 32;

/** The default heartbeat interval, in ms. */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** Applies every default and checks every value; a TypeError names a bad option. */
export function resolveHubOptions(options: HubOptions, version: string): LocalNodeOptions {
  const maxLifetimeMs = positive(options.maxLifetimeMs, 'maxLifetimeMs', 15 * 60_000);
  const heartbeatMs = positive(options.heartbeatMs, 'heartbeatMs', DEFAULT_HEARTBEAT_MS);
  const resolved: LocalNodeOptions = {
    name: options.name ?? 'default',
    heartbeatMs,
    deadStreamTimeoutMs: deadStreamTimeout(options.deadStreamTimeoutMs, heartbeatMs),
    // `retry:` takes an integer: a fractional value would break every connect.
    reconnectTimeMs: Math.round(positive(options.reconnectTimeMs, 'reconnectTimeMs', 5_000)),
    maxLifetimeMs,
    minLifetimeMs: Math.min(positive(options.minLifetimeMs, 'minLifetimeMs', 10_000), maxLifetimeMs),
    keepaliveChoice: keepaliveChoiceOf(options.keepaliveChoice),
    keepaliveZero: keepaliveZeroOf(options.keepaliveZero),
    lifetimeJitter: fraction(options.lifetimeJitter, 'lifetimeJitter', 0.1),
    clientIdMaxConnections: positive(options.clientIdMaxConnections, 'clientIdMaxConnections', 3),
    maxConnectionsPerUser: positive(options.maxConnectionsPerUser, 'maxConnectionsPerUser', DEFAULT_MAX_CONNECTIONS_PER_USER),
    maxConnections: positive(options.maxConnections, 'maxConnections', Infinity),
    writeBufferLimit: positive(options.writeBufferLimit, 'writeBufferLimit', 1024 * 1024),
    maxListenersPerConnection: Math.floor(positive(options.maxListenersPerConnection, 'maxListenersPerConnection', 256)),
    maxChannelsPerConnection: Math.floor(positive(options.maxChannelsPerConnection, 'maxChannelsPerConnection', 64)),
    leaveDelayMs: 0,
    version: options.version ?? version,
  };
  resolved.leaveDelayMs = resolvePresenceOptions(options.presence, resolved.reconnectTimeMs).leaveDelayMs;
  if (typeof resolved.name !== 'string' || !/^[\w.-]{1,64}$/.test(resolved.name)) {
    throw new TypeError(`name must be 1-64 characters of [A-Za-z0-9_.-], got ${String(options.name)}`);
  }
  return resolved;
}
