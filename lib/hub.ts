import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientInfo } from './client-info.js';
import { Connection, type CloseReason, type ConnectionInfo, type RequestInfo } from './connection.js';
import { SseClosedError, SseTooManyConnectionsError } from './errors.js';
import { encodeFrame, HEARTBEAT_FRAME } from './frame.js';
import { KeyIndex } from './key-index.js';
import { resolveHubOptions, type HubOptions, type ResolvedHubOptions } from './options.js';
import { Qos, type QosAckedEvent, type QosExpiredEvent } from './qos/qos.js';
import type { TargetKind } from './qos/store.js';
import { SseQosDisabledError } from './errors.js';
import { keyOf, keysOf, type Key, type SseUser } from './user.js';
import { VERSION } from './version.js';

/** Options of every `send*` call. */
export interface SendOptions {
  /** Deliver only to connections whose listener set contains the event name. Default `false`. */
  listening?: boolean;
}

/** Options of every `disconnect*` call. */
export interface DisconnectOptions {
  /** Whether the client should reconnect by itself. Default `false`: a kick keeps it out. */
  reconnect?: boolean;
}

/** Filter of {@link Hub.getConnections}; every given field must match. */
export interface ConnectionFilter {
  userId?: Key;
  tenantId?: Key;
  accessToken?: string;
  channel?: string;
  clientId?: string;
  /** Only connections listening to this event. */
  listening?: string;
}

/** Payload of the `listeners-change` event. */
export interface ListenersChange {
  connection: Connection;
  before: string[];
  after: string[];
}

/** Events of a hub. */
export interface HubEvents {
  /** A stream opened and is in every index; `connect-finish` has been written. */
  connect: [connection: Connection];
  /** A stream ended and has left every index. */
  disconnect: [connection: Connection, reason: CloseReason];
  'listeners-change': [change: ListenersChange];
  /** A target acknowledged a durable message (or it was written to a client that cannot ack). */
  'qos-acked': [event: QosAckedEvent];
  /** A durable message expired before a target acknowledged it. */
  'qos-expired': [event: QosExpiredEvent];
  /** A listener of the hub threw; the plugin forwards these to `app.emit('error')`. */
  error: [error: unknown];
}

/** How a stream is opened: everything the hub needs from the HTTP layer. */
export interface OpenStreamInit {
  req: IncomingMessage;
  res: ServerResponse;
  user: SseUser;
  client: ClientInfo;
  request: RequestInfo;
}

const PENDING_DURATIONS_MAX = 10_000;
const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
};

/**
 * The registry of one system's connections (one per mounted base path) and its API:
 * send, query, disconnect, online-time. Reachable as `ctx.sse`, `plugin.hub` or through
 * {@link createHub}. Every method returns a Promise so that code keeps working unchanged
 * once the hub is clustered and answers come from other nodes.
 */
export class Hub extends EventEmitter<HubEvents> {
  readonly options: ResolvedHubOptions;
  readonly #qos: Qos | undefined;
  readonly #byId = new Map<string, Connection>();
  readonly #byUser = new KeyIndex<Connection>();
  readonly #byToken = new KeyIndex<Connection>();
  readonly #byTenant = new KeyIndex<Connection>();
  readonly #byChannel = new KeyIndex<Connection>();
  readonly #byListener = new KeyIndex<Connection>();
  readonly #byClient = new KeyIndex<Connection>();
  readonly #pendingDurations = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #lastHeartbeat = 0;
  #nextExpiry = Infinity;
  #closed = false;

  constructor(options: HubOptions = {}) {
    super();
    this.options = resolveHubOptions(options, VERSION);
    this.#qos = options.qos === undefined ? undefined : new Qos(this, options.qos);
  }

  /** Durable delivery (see {@link Qos}). Throws `ERR_SSE_QOS_DISABLED` without the `qos` option. */
  get qos(): Qos {
    if (this.#qos === undefined) throw new SseQosDisabledError();
    return this.#qos;
  }

  /** Whether durable delivery is configured. */
  get hasQos(): boolean {
    return this.#qos !== undefined;
  }

  get name(): string {
    return this.options.name;
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---- streams -------------------------------------------------------------------------

  /**
   * Opens a stream on `res` and registers it. Throws (before any byte is written) when the
   * hub is closed or a connection cap is reached. Used by the plugin; usable with plain
   * `node:http` too.
   */
  open(init: OpenStreamInit): Connection {
    if (this.#closed) throw new SseClosedError('Hub');
    const o = this.options;
    if (this.#byId.size >= o.maxConnections) {
      throw new SseTooManyConnectionsError(`This server holds its maximum of ${o.maxConnections} connections`);
    }
    const { user, client } = init;
    const userId = keyOf(user.id);
    if (userId !== undefined && (this.#byUser.get(userId)?.size ?? 0) >= o.maxConnectionsPerUser) {
      throw new SseTooManyConnectionsError(`At most ${o.maxConnectionsPerUser} connections per user`);
    }
    const requested = client.keepaliveTime;
    const base = requested ? Math.min(Math.max(requested, o.minLifetimeMs), o.maxLifetimeMs) : o.maxLifetimeMs;
    const lifetime = Math.round(base * (1 - Math.random() * o.lifetimeJitter));
    const conn = new Connection({
      id: randomBytes(18).toString('base64url'),
      hub: this,
      res: init.res,
      user,
      userId,
      accessToken: keyOf(user.accessToken),
      tenantId: keyOf(user.tenantId),
      client,
      request: init.request,
      expiresAt: Date.now() + lifetime,
      writeBufferLimit: o.writeBufferLimit,
    });

    const socket = init.req.socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    socket.setTimeout(0);
    init.res.writeHead(200, STREAM_HEADERS);
    init.res.on('close', () => conn._lost());

    this.#byId.set(conn.id, conn);
    this.#byUser.add(conn.userId, conn);
    this.#byToken.add(conn.accessToken, conn);
    this.#byTenant.add(conn.tenantId, conn);
    this.#byChannel.add(conn.channel, conn);
    for (const name of conn.listeners) this.#byListener.add(name, conn);
    const clientKey = this.#clientKey(conn);
    this.#byClient.add(clientKey, conn);
    if (conn.expiresAt < this.#nextExpiry) this.#nextExpiry = conn.expiresAt;
    this.#startTimer();

    conn.write(
      encodeFrame({
        event: 'connect-finish',
        retry: o.reconnectTimeMs,
        data: {
          connectionId: conn.id,
          serverTime: Date.now(),
          reconnectTime: o.reconnectTimeMs,
          name: o.name,
          enableCluster: false,
          version: o.version,
          heartbeatMs: o.heartbeatMs,
          expiresAt: conn.expiresAt,
        },
      }),
    );

    // The cap is per browser (clientId) and site: the oldest tab of that browser goes.
    const siblings = clientKey === undefined ? undefined : this.#byClient.get(clientKey);
    if (siblings !== undefined && siblings.size > o.clientIdMaxConnections) {
      for (const old of [...siblings].slice(0, siblings.size - o.clientIdMaxConnections)) old.close('evicted', false);
    }

    const pending = this.#takePendingDuration(conn);
    if (pending !== undefined) this.#writeDuration(conn, pending);
    this.#qos?._onOpen(conn);
    this.#emitSafe('connect', conn);
    return conn;
  }

  /** @internal Removes a closed connection from every index, then emits `disconnect`. */
  _remove(conn: Connection, reason: CloseReason): void {
    if (this.#byId.get(conn.id) !== conn) return;
    this.#byId.delete(conn.id);
    this.#byUser.delete(conn.userId, conn);
    this.#byToken.delete(conn.accessToken, conn);
    this.#byTenant.delete(conn.tenantId, conn);
    this.#byChannel.delete(conn.channel, conn);
    for (const name of conn.listeners) this.#byListener.delete(name, conn);
    this.#byClient.delete(this.#clientKey(conn), conn);
    if (this.#byId.size === 0) this.#stopTimer();
    this.#emitSafe('disconnect', conn, reason);
  }

  /** Live local connections. */
  connections(): IterableIterator<Connection> {
    return this.#byId.values();
  }

  /** The live local connection with this id. */
  getLocalConnection(id: string): Connection | undefined {
    return typeof id === 'string' ? this.#byId.get(id) : undefined;
  }

  // ---- listeners -----------------------------------------------------------------------

  /** Adds event names to a connection's listener set; emits `listeners-change`. Returns the new set. */
  addListeners(conn: Connection, names: readonly string[]): string[] {
    return this.#changeListeners(conn, names, true);
  }

  /** Removes event names from a connection's listener set; emits `listeners-change`. */
  removeListeners(conn: Connection, names: readonly string[]): string[] {
    return this.#changeListeners(conn, names, false);
  }

  #changeListeners(conn: Connection, names: readonly string[], add: boolean): string[] {
    const before = [...conn.listeners];
    const added: string[] = [];
    for (const name of names) {
      if (add && !conn.listeners.has(name)) {
        conn.listeners.add(name);
        added.push(name);
        if (!conn.closed) this.#byListener.add(name, conn);
      } else if (!add && conn.listeners.delete(name)) {
        this.#byListener.delete(name, conn);
      }
    }
    const after = [...conn.listeners];
    if (after.length !== before.length) this.#emitSafe('listeners-change', { connection: conn, before, after });
    if (added.length > 0 && !conn.closed) this.#qos?._onListenersAdded(conn, added);
    return after;
  }

  // ---- sending -------------------------------------------------------------------------

  /** Sends to every connection. Resolves to the number of connections written to. */
  async sendAll(event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#deliver(this.#byId.values(), event, data, options);
  }

  async sendByUserId(userIds: Key | readonly Key[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#deliver(this.#collect(this.#byUser, keysOf(userIds, 'userIds')), event, data, options);
  }

  async sendByAccessToken(tokens: string | readonly string[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#deliver(this.#collect(this.#byToken, keysOf(tokens, 'accessTokens')), event, data, options);
  }

  async sendByTenantId(tenantIds: Key | readonly Key[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#deliver(this.#collect(this.#byTenant, keysOf(tenantIds, 'tenantIds')), event, data, options);
  }

  async sendByChannel(channels: string | readonly string[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#deliver(this.#collect(this.#byChannel, keysOf(channels, 'channels')), event, data, options);
  }

  /** Sends to connections by id. Resolves to the number written (unknown or closed ids count 0). */
  async sendByConnectionId(ids: string | readonly string[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    const conns: Connection[] = [];
    for (const id of keysOf(ids, 'connectionIds')) {
      const conn = this.#byId.get(id);
      if (conn !== undefined) conns.push(conn);
    }
    return this.#deliver(conns, event, data, options);
  }

  /** @internal The live connections a durable message of this kind and keys targets. */
  _targets(kind: TargetKind, keys: string[]): Iterable<Connection> {
    switch (kind) {
      case 'all': return [...this.#byId.values()];
      case 'user': return this.#collect(this.#byUser, keys);
      case 'token': return this.#collect(this.#byToken, keys);
      case 'tenant': return this.#collect(this.#byTenant, keys);
      case 'channel': return this.#collect(this.#byChannel, keys);
    }
  }

  /** @internal Emits a durable-delivery event; a throwing listener is reported, not propagated. */
  _emitQos<K extends 'qos-acked' | 'qos-expired'>(event: K, ...args: HubEvents[K]): void {
    this.#emitSafe(event, ...args);
  }

  /** Distinct connections under any of the keys: one send reaches each connection once. */
  #collect(index: KeyIndex<Connection>, keys: string[]): Iterable<Connection> {
    if (keys.length === 1) return [...(index.get(keys[0]!) ?? [])];
    const out = new Set<Connection>();
    for (const key of keys) for (const conn of index.get(key) ?? []) out.add(conn);
    return out;
  }

  #deliver(targets: Iterable<Connection>, event: string, data: unknown, options: SendOptions | undefined): number {
    if (typeof event !== 'string' || event === '') throw new TypeError('event must be a non-empty string');
    const frame = encodeFrame({ event, data });
    const listening = options?.listening === true;
    let count = 0;
    for (const conn of targets) {
      if (listening && !conn.listeners.has(event)) continue;
      if (conn.write(frame)) count++;
    }
    return count;
  }

  // ---- queries -------------------------------------------------------------------------

  async isOnline(userId: Key): Promise<boolean> {
    const key = keyOf(userId);
    return key !== undefined && this.#byUser.has(key);
  }

  /** The user object of one of this user's connections. */
  async getUser(userId: Key): Promise<SseUser | undefined> {
    const key = keyOf(userId);
    if (key === undefined) return undefined;
    for (const conn of this.#byUser.get(key) ?? []) return conn.user;
    return undefined;
  }

  /** Online users, one entry per user id (anonymous connections are not users). */
  async getUsers(): Promise<SseUser[]> {
    return this.#usersOf(this.#byUser.keys());
  }

  async getUserIds(): Promise<string[]> {
    return [...this.#byUser.keys()];
  }

  async getAccessTokens(): Promise<string[]> {
    return [...this.#byToken.keys()];
  }

  async getTenantIds(): Promise<string[]> {
    return [...this.#byTenant.keys()];
  }

  async getChannels(): Promise<string[]> {
    return [...this.#byChannel.keys()];
  }

  async getUserCount(): Promise<number> {
    return this.#byUser.size;
  }

  async getAccessTokenCount(): Promise<number> {
    return this.#byToken.size;
  }

  async getConnectionCount(): Promise<number> {
    return this.#byId.size;
  }

  /** Users with a connection listening to `event`, optionally within one tenant. */
  async getUsersListening(event: string, tenantId?: Key): Promise<SseUser[]> {
    return this.#usersOf(await this.getUserIdsListening(event, tenantId));
  }

  async getUserIdsListening(event: string, tenantId?: Key): Promise<string[]> {
    const tenant = keyOf(tenantId);
    const ids = new Set<string>();
    for (const conn of this.#byListener.get(event) ?? []) {
      if (conn.userId !== undefined && (tenant === undefined || conn.tenantId === tenant)) ids.add(conn.userId);
    }
    return [...ids];
  }

  /** Snapshots of the connections that match every field of `filter`. */
  async getConnections(filter: ConnectionFilter = {}): Promise<ConnectionInfo[]> {
    return this.#filter(filter).map((conn) => conn.toInfo());
  }

  async getConnectionById(id: string): Promise<ConnectionInfo | undefined> {
    return this.getLocalConnection(id)?.toInfo();
  }

  #usersOf(userIds: Iterable<string>): SseUser[] {
    const users: SseUser[] = [];
    for (const id of userIds) {
      for (const conn of this.#byUser.get(id) ?? []) {
        users.push(conn.user);
        break;
      }
    }
    return users;
  }

  #filter(filter: ConnectionFilter): Connection[] {
    const userId = keyOf(filter.userId);
    const tenantId = keyOf(filter.tenantId);
    const token = keyOf(filter.accessToken);
    // Start from the narrowest index given, then check the remaining fields.
    const source: Iterable<Connection> =
      userId !== undefined ? this.#byUser.get(userId) ?? [] :
      token !== undefined ? this.#byToken.get(token) ?? [] :
      filter.channel !== undefined ? this.#byChannel.get(filter.channel) ?? [] :
      tenantId !== undefined ? this.#byTenant.get(tenantId) ?? [] :
      filter.listening !== undefined ? this.#byListener.get(filter.listening) ?? [] :
      this.#byId.values();
    const out: Connection[] = [];
    for (const c of source) {
      if (userId !== undefined && c.userId !== userId) continue;
      if (tenantId !== undefined && c.tenantId !== tenantId) continue;
      if (token !== undefined && c.accessToken !== token) continue;
      if (filter.channel !== undefined && c.channel !== filter.channel) continue;
      if (filter.clientId !== undefined && c.client.clientId !== filter.clientId) continue;
      if (filter.listening !== undefined && !c.listeners.has(filter.listening)) continue;
      out.push(c);
    }
    return out;
  }

  // ---- control -------------------------------------------------------------------------

  /** Closes every connection of these users with `reason: 'kick'`. Resolves to the count closed. */
  async disconnectByUserId(userIds: Key | readonly Key[], options?: DisconnectOptions): Promise<number> {
    return this.#kick(this.#collect(this.#byUser, keysOf(userIds, 'userIds')), options);
  }

  async disconnectByAccessToken(tokens: string | readonly string[], options?: DisconnectOptions): Promise<number> {
    return this.#kick(this.#collect(this.#byToken, keysOf(tokens, 'accessTokens')), options);
  }

  async disconnectByConnectionId(ids: string | readonly string[], options?: DisconnectOptions): Promise<number> {
    const conns: Connection[] = [];
    for (const id of keysOf(ids, 'connectionIds')) {
      const conn = this.#byId.get(id);
      if (conn !== undefined) conns.push(conn);
    }
    return this.#kick(conns, options);
  }

  /** Same as {@link Hub.disconnectByConnectionId}; kept for the Java API's plural name. */
  async disconnectByConnectionIds(ids: readonly string[], options?: DisconnectOptions): Promise<number> {
    return this.disconnectByConnectionId(ids, options);
  }

  #kick(conns: Iterable<Connection>, options: DisconnectOptions | undefined): number {
    let count = 0;
    for (const conn of [...conns]) {
      if (conn.closed) continue;
      conn.close('kick', options?.reconnect ?? false);
      count++;
    }
    return count;
  }

  // ---- online time ---------------------------------------------------------------------

  /**
   * Tells these users' clients their accumulated online time (`sse-set-duration`). A user
   * who is offline gets it on their next connect. Resolves to the connections written now.
   */
  async setDurationByUserId(userIds: Key | readonly Key[], seconds: number): Promise<number> {
    return this.#setDuration(this.#byUser, 'u:', keysOf(userIds, 'userIds'), seconds);
  }

  async setDurationByAccessToken(tokens: string | readonly string[], seconds: number): Promise<number> {
    return this.#setDuration(this.#byToken, 't:', keysOf(tokens, 'accessTokens'), seconds);
  }

  /** A connection that is gone cannot come back under the same id: nothing is kept for later. */
  async setDurationByConnectionId(ids: string | readonly string[], seconds: number): Promise<number> {
    assertSeconds(seconds);
    let count = 0;
    for (const id of keysOf(ids, 'connectionIds')) {
      const conn = this.#byId.get(id);
      if (conn !== undefined && this.#writeDuration(conn, seconds)) count++;
    }
    return count;
  }

  #setDuration(index: KeyIndex<Connection>, prefix: string, keys: string[], seconds: number): number {
    assertSeconds(seconds);
    let count = 0;
    for (const key of keys) {
      const conns = index.get(key);
      if (conns === undefined) {
        this.#pendingDurations.delete(prefix + key);
        this.#pendingDurations.set(prefix + key, seconds);
        if (this.#pendingDurations.size > PENDING_DURATIONS_MAX) {
          this.#pendingDurations.delete(this.#pendingDurations.keys().next().value!);
        }
        continue;
      }
      for (const conn of [...conns]) if (this.#writeDuration(conn, seconds)) count++;
    }
    return count;
  }

  #writeDuration(conn: Connection, seconds: number): boolean {
    conn.sessionDuration = seconds;
    return conn.write(encodeFrame({ event: 'sse-set-duration', data: { duration: seconds } }));
  }

  #takePendingDuration(conn: Connection): number | undefined {
    for (const key of [conn.userId && 'u:' + conn.userId, conn.accessToken && 't:' + conn.accessToken]) {
      if (!key) continue;
      const seconds = this.#pendingDurations.get(key);
      if (seconds !== undefined) {
        this.#pendingDurations.delete(key);
        return seconds;
      }
    }
    return undefined;
  }

  // ---- timer, shutdown -----------------------------------------------------------------

  /**
   * One timer per hub, not per connection: heartbeats and lifetime expiry. Runs only while
   * there are connections, and never keeps the process alive by itself.
   */
  #startTimer(): void {
    if (this.#timer !== undefined) return;
    const tick = Math.min(this.options.heartbeatMs, 1000);
    this.#lastHeartbeat = Date.now();
    this.#timer = setInterval(() => this.#onTick(), tick);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #onTick(): void {
    const now = Date.now();
    if (now >= this.#nextExpiry) {
      let next = Infinity;
      for (const conn of [...this.#byId.values()]) {
        if (conn.expiresAt <= now) conn.close('expired', true);
        else if (conn.expiresAt < next) next = conn.expiresAt;
      }
      this.#nextExpiry = next;
    }
    if (now - this.#lastHeartbeat >= this.options.heartbeatMs - 5) {
      this.#lastHeartbeat = now;
      for (const conn of this.#byId.values()) conn.write(HEARTBEAT_FRAME, 0);
    }
  }

  /**
   * Closes every stream with `reason: 'shutdown', reconnect: true` (clients come back, to
   * another node if there is one) and refuses new ones.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of [...this.#byId.values()]) conn.close('shutdown', true);
    this.#stopTimer();
    this.#qos?.close();
  }

  #clientKey(conn: Connection): string | undefined {
    const clientId = conn.client.clientId;
    // Fully anonymous clients share no identity: a known clientId must not let one evict another.
    if (clientId === undefined || (conn.userId === undefined && conn.accessToken === undefined)) return undefined;
    return JSON.stringify([conn.userId ?? conn.accessToken ?? null, clientId, conn.request.domain, conn.tenantId ?? null]);
  }

  #emitSafe<K extends Exclude<keyof HubEvents, 'error'>>(event: K, ...args: HubEvents[K]): void {
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (err) {
      this.reportError(err);
    }
  }

  /** Routes an error to the hub's `error` listeners (the plugin's forward it to Koa). */
  reportError(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else console.error(err);
  }
}

/** A hub without Koa: to push from a process that serves streams by other means, or none. */
export function createHub(options: HubOptions = {}): Hub {
  return new Hub(options);
}

function assertSeconds(seconds: number): void {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError(`seconds must be a non-negative number, got ${String(seconds)}`);
  }
}
