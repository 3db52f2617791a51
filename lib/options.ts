import type { Context } from 'koa';
import type { Connection } from './local/connection.js';
import type { RemoteConnection } from './cluster/remote-connection.js';
import type { ClusterOptions } from './cluster/cluster-options.js';
import type { QosOptions } from './qos/qos.js';
import type { SseUser } from './core/user.js';

/** A file received by an upload endpoint, held in memory (bounded by `uploadLimit`). */
export interface UploadedFile {
  /** The form field the file came in. */
  fieldName: string;
  /** The client's file name (untrusted: never use it as a path). */
  filename: string;
  mimeType: string;
  encoding: string;
  /** Size in bytes. */
  size: number;
  data: Buffer;
}

/** Form fields of an upload; a repeated field gives an array. */
export type UploadFields = Record<string, string | string[]>;

/** Options of a hub: the part of {@link SsePluginOptions} that does not need Koa. */
export interface HubOptions {
  /** Name of the system, e.g. `hr`. Default: the last segment of the plugin's base path, else `default`. */
  name?: string;
  /** Interval of the heartbeat comment, in ms. Default `15000`. */
  heartbeatMs?: number;
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
   * Random fraction taken off each lifetime so that a deploy's worth of clients do not all
   * reconnect in the same second. `0` disables. Default `0.1`.
   */
  lifetimeJitter?: number;
  /** Most streams per user + clientId + domain + tenant; the oldest is evicted. Default `3`. */
  clientIdMaxConnections?: number;
  /** Most streams per user id (429 beyond). Default `Infinity`. */
  maxConnectionsPerUser?: number;
  /** Most streams on this hub (429 beyond). Default `Infinity`. */
  maxConnections?: number;
  /**
   * Bytes a connection may have queued in user space before it is closed as a slow reader
   * (`reason: 'slow'`). Default 1 MiB.
   */
  writeBufferLimit?: number;
  /** Sent in `connect-finish.version`. Default: this package's version. */
  version?: string;
  /** Durable at-least-once delivery through SQLite (`hub.qos`). Default: off. */
  qos?: QosOptions;
  /** Join a LAN cluster of nodes that act as one hub. Default: off. */
  cluster?: ClusterOptions;
}

/** Options of {@link ssePlugin}. Every option is optional except `authenticate`. */
export interface SsePluginOptions extends HubOptions {
  /**
   * Identifies the caller of every endpoint. Return the user, or null for 401.
   * Read cookies / headers here; the library never stores them.
   */
  authenticate: (ctx: Context) => SseUser | null | undefined | Promise<SseUser | null | undefined>;
  /** Whether this user may use the admin endpoints. Default: nobody (403). */
  authorizeAdmin?: (ctx: Context, user: SseUser) => boolean | Promise<boolean>;
  /** Handles `POST {base}/connect/message/{path}.do`; the result is sent through `wrapOkResponse`. */
  onMessage?: (path: string, ctx: Context, connection: Connection | RemoteConnection, body: unknown) => unknown;
  /** Handles `POST {base}/connect/upload/{path}.do`; the result is sent through `wrapOkResponse`. */
  onUpload?: (
    path: string,
    ctx: Context,
    connection: Connection | RemoteConnection,
    fields: UploadFields,
    files: UploadedFile[],
  ) => unknown;
  /** Envelope of every JSON success answer. Default `{success: true, code: 200, data, message: null, errorMessage: null}`. */
  wrapOkResponse?: (result: unknown) => unknown;
  /** What admin listings show of a user. Default `{id, name, tenantId}`: never tokens or other fields. */
  redactUser?: (user: SseUser) => unknown;
  /** Limit of a JSON request body, in bytes. Default 1 MiB. */
  jsonLimit?: number;
  /** Limit of an upload's total size (all files), in bytes. Default 10 MiB. */
  uploadLimit?: number;
  /** Most files in one upload. Default `20`. */
  uploadMaxFiles?: number;
  /** Makes this hub `ctx.sse` when several plugins are mounted. Default: the first mounted. */
  primary?: boolean;
}

/** Hub options with every default applied. */
export type ResolvedHubOptions = Required<Omit<HubOptions, 'qos' | 'cluster'>>;

export const DEFAULT_HEARTBEAT_MS = 15_000;

export function resolveHubOptions(options: HubOptions, version: string): ResolvedHubOptions {
  const maxLifetimeMs = positive(options.maxLifetimeMs, 'maxLifetimeMs', 15 * 60_000);
  const resolved: ResolvedHubOptions = {
    name: options.name ?? 'default',
    heartbeatMs: positive(options.heartbeatMs, 'heartbeatMs', DEFAULT_HEARTBEAT_MS),
    // `retry:` takes an integer: a fractional value would break every connect.
    reconnectTimeMs: Math.round(positive(options.reconnectTimeMs, 'reconnectTimeMs', 5_000)),
    maxLifetimeMs,
    minLifetimeMs: Math.min(positive(options.minLifetimeMs, 'minLifetimeMs', 10_000), maxLifetimeMs),
    lifetimeJitter: fraction(options.lifetimeJitter, 'lifetimeJitter', 0.1),
    clientIdMaxConnections: positive(options.clientIdMaxConnections, 'clientIdMaxConnections', 3),
    maxConnectionsPerUser: positive(options.maxConnectionsPerUser, 'maxConnectionsPerUser', Infinity),
    maxConnections: positive(options.maxConnections, 'maxConnections', Infinity),
    writeBufferLimit: positive(options.writeBufferLimit, 'writeBufferLimit', 1024 * 1024),
    version: options.version ?? version,
  };
  if (typeof resolved.name !== 'string' || !/^[\w.-]{1,64}$/.test(resolved.name)) {
    throw new TypeError(`name must be 1-64 characters of [A-Za-z0-9_.-], got ${String(options.name)}`);
  }
  return resolved;
}

export function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

function fraction(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new TypeError(`${name} must be a number in [0, 1), got ${String(value)}`);
  }
  return value;
}
