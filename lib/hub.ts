import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientInfo } from './core/client-info.js';
import { Connection, type CloseReason, type ConnectionInfo, type RequestInfo } from './local/connection.js';
import { SseClosedError, SseQosDisabledError, SseTooManyConnectionsError } from './core/errors.js';
import { Cluster } from './cluster/cluster.js';
import { createTransport } from './cluster/cluster-options.js';
import { mergeQuery } from './cluster/merge.js';
import type { ClusterTargetKind, HelloAnswer, QueryName, SendItem } from './cluster/messages.js';
import { encodeFrame, HEARTBEAT_FRAME, serializeData } from './core/frame.js';
import { ConnectionIndex, type ConnectionFilter } from './local/connection-index.js';
import { PendingDurations } from './local/pending-durations.js';
import { resolveHubOptions, type HubOptions, type ResolvedHubOptions } from './options.js';
import { Qos, type QosAckedEvent, type QosExpiredEvent } from './qos/qos.js';
import type { TargetRef } from './qos/store.js';
import { keyOf, keysOf, type Key, type SseUser } from './core/user.js';
import { VERSION } from './core/version.js';
import type { HubStats } from './core/admin-api.js';

export type { HubStats } from './core/admin-api.js';

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
  /** A cluster peer proved it knows the secret and now takes part. */
  'peer-up': [peer: HelloAnswer];
  /** A cluster peer left or stopped answering. */
  'peer-down': [nodeId: string];
  /** A peer failed one operation (timeout, refusal): that operation's result is partial. */
  'peer-error': [info: { nodeId: string; operation: string; error: unknown }];
  /** One request to a peer finished (for metrics): how long it took and whether it succeeded. */
  'peer-rpc': [info: { nodeId: string; operation: string; ms: number; ok: boolean }];
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
  /** Running totals since the hub was created (this node only). */
  readonly stats: HubStats = { eventsSent: 0, eventsFailed: 0, bytesSent: 0, connects: 0, disconnects: 0, slowCloses: 0 };
  readonly #qos: Qos | undefined;
  readonly #cluster: Cluster | undefined;
  readonly #ready: Promise<void>;
  readonly #index = new ConnectionIndex();
  readonly #pendingDurations = new PendingDurations();
  #timer: NodeJS.Timeout | undefined;
  #lastHeartbeat = 0;
  #nextExpiry = Infinity;
  #closed = false;

  constructor(options: HubOptions = {}) {
    super();
    this.options = resolveHubOptions(options, VERSION);
    this.#qos = options.qos === undefined ? undefined : new Qos(this, options.qos);
    if (options.cluster === undefined) {
      this.#cluster = undefined;
      this.#ready = Promise.resolve();
    } else {
      const { transport, timeoutMs, group } = createTransport(options.cluster, this.options.name);
      this.#cluster = new Cluster(this, transport, { timeoutMs, group });
      this.#ready = this.#cluster.start(this.#qos?.tag);
      this.#ready.catch((err: unknown) => this.reportError(err));
    }
  }

  /** Resolves once the hub's cluster node is listening (at once without a cluster); rejects if it cannot start. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** The cluster side of this hub, if clustered: its node id and peers. */
  get cluster(): Cluster | undefined {
    return this.#cluster;
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
    if (this.#index.size >= o.maxConnections) {
      throw new SseTooManyConnectionsError(`This server holds its maximum of ${o.maxConnections} connections`);
    }
    const { user, client } = init;
    const userId = keyOf(user.id);
    if (userId !== undefined && this.#index.countOfUser(userId) >= o.maxConnectionsPerUser) {
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

    this.stats.connects++;
    this.#index.add(conn);
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
          enableCluster: this.#cluster !== undefined,
          version: o.version,
          heartbeatMs: o.heartbeatMs,
          expiresAt: conn.expiresAt,
        },
      }),
    );

    // The cap is per browser (clientId) and site: the oldest tab of that browser goes.
    const siblings = this.#index.siblings(conn);
    for (const old of siblings.slice(0, Math.max(0, siblings.length - o.clientIdMaxConnections))) old.close('evicted', false);

    const pending = this.#pendingDurations.take(conn);
    if (pending !== undefined) this.#writeDuration(conn, pending);
    this.#qos?._onOpen(conn);
    if (this.#cluster !== undefined) this.#cluster.onOpen(conn).catch((err: unknown) => this.reportError(err));
    this.#emitSafe('connect', conn);
    return conn;
  }

  /** @internal Removes a closed connection from every index, then emits `disconnect`. */
  _remove(conn: Connection, reason: CloseReason): void {
    if (!this.#index.has(conn)) return;
    this.#index.delete(conn);
    this.stats.disconnects++;
    if (reason === 'slow') this.stats.slowCloses++;
    if (this.#index.size === 0) this.#stopTimer();
    this.#emitSafe('disconnect', conn, reason);
  }

  /** Live local connections. */
  connections(): IterableIterator<Connection> {
    return this.#index.values();
  }

  /** The live local connection with this id. */
  getLocalConnection(id: string): Connection | undefined {
    return typeof id === 'string' ? this.#index.get(id) : undefined;
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
        if (!conn.closed) this.#index.addListener(conn, name);
      } else if (!add && conn.listeners.delete(name)) {
        this.#index.deleteListener(conn, name);
      }
    }
    const after = [...conn.listeners];
    if (after.length !== before.length) this.#emitSafe('listeners-change', { connection: conn, before, after });
    if (added.length > 0 && !conn.closed) {
      this.#qos?._onListenersAdded(conn, added);
      // Listening-mode messages owned by peers may have become deliverable too.
      this.#cluster?.onOpen(conn, added).catch((err: unknown) => this.reportError(err));
    }
    return after;
  }

  // ---- sending -------------------------------------------------------------------------

  /** Sends to every connection. Resolves to the number of connections written to (cluster-wide). */
  async sendAll(event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#send('all', [''], event, data, options);
  }

  async sendByUserId(userIds: Key | readonly Key[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#send('user', keysOf(userIds, 'userIds'), event, data, options);
  }

  async sendByAccessToken(tokens: string | readonly string[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#send('token', keysOf(tokens, 'accessTokens'), event, data, options);
  }

  async sendByTenantId(tenantIds: Key | readonly Key[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#send('tenant', keysOf(tenantIds, 'tenantIds'), event, data, options);
  }

  async sendByChannel(channels: string | readonly string[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#send('channel', keysOf(channels, 'channels'), event, data, options);
  }

  /** Sends to connections by id. Resolves to the number written (unknown or closed ids count 0). */
  async sendByConnectionId(ids: string | readonly string[], event: string, data?: unknown, options?: SendOptions): Promise<number> {
    return this.#send('connection', keysOf(ids, 'connectionIds'), event, data, options);
  }

  /**
   * Writes locally (one encoded Buffer for every recipient), then, when clustered, has the
   * peers do the same; only connection ids not found here are asked of the peers.
   */
  async #send(kind: ClusterTargetKind, keys: string[], event: string, data: unknown, options: SendOptions | undefined): Promise<number> {
    if (typeof event !== 'string' || event === '') throw new TypeError('event must be a non-empty string');
    const listening = options?.listening === true;
    const frame = encodeFrame({ event, data });
    let count = this.#deliver(this._targets(kind, keys), frame, event, listening);
    const cluster = this.#cluster;
    if (cluster === undefined || keys.length === 0) return count;
    const remoteKeys = this.#remoteKeys(kind, keys);
    if (remoteKeys.length === 0) return count;
    const result = await cluster.send({ kind, keys: remoteKeys, event, data: serializeData(data), listening });
    for (const n of result.values) count += n;
    return count;
  }

  /** @internal Delivers a send forwarded by a peer; `onWritten` sees each connection written. */
  _localSend(item: SendItem, onWritten?: (conn: Connection) => void): number {
    const frame = encodeFrame({ event: item.event, data: item.data, id: item.id });
    return this.#deliver(this._targets(item.kind, item.keys), frame, item.event, item.listening, onWritten);
  }

  /** @internal The live local connections a target of this kind and keys reaches, each once. */
  _targets(kind: ClusterTargetKind, keys: string[]): Iterable<Connection> {
    return this.#index.targets(kind, keys);
  }

  /** @internal Emits a durable-delivery event; a throwing listener is reported, not propagated. */
  _emitQos<K extends 'qos-acked' | 'qos-expired'>(event: K, ...args: HubEvents[K]): void {
    this.#emitSafe(event, ...args);
  }

  /** @internal Emits a cluster event. */
  _emitCluster<K extends 'peer-up' | 'peer-down' | 'peer-error' | 'peer-rpc'>(event: K, ...args: HubEvents[K]): void {
    this.#emitSafe(event, ...args);
  }

  #deliver(targets: Iterable<Connection>, frame: Buffer, event: string, listening: boolean, onWritten?: (conn: Connection) => void): number {
    let count = 0;
    let failed = 0;
    for (const conn of targets) {
      if (listening && !conn.listeners.has(event)) continue;
      if (!conn.write(frame)) {
        failed++;
        continue;
      }
      count++;
      onWritten?.(conn);
    }
    const stats = this.stats;
    stats.eventsSent += count;
    stats.eventsFailed += failed;
    stats.bytesSent += count * frame.length;
    return count;
  }

  // ---- queries -------------------------------------------------------------------------
  // Each answers for the whole cluster when clustered: local first, then merged with the
  // peers'. A peer that fails is left out and reported through `peer-error`.

  async isOnline(userId: Key): Promise<boolean> {
    const key = keyOf(userId);
    if (key === undefined) return false;
    if (this.#index.query('isOnline', [key]) === true) return true;
    return (await this.#query<boolean>('isOnline', [key])).value.some(Boolean);
  }

  /** The user object of one of this user's connections. */
  async getUser(userId: Key): Promise<SseUser | undefined> {
    const key = keyOf(userId);
    if (key === undefined) return undefined;
    const local = this._localQuery('user', [key]) as SseUser | null;
    if (local !== null) return local;
    return (await this.#query<SseUser | null>('user', [key])).value.find((u) => u !== null) ?? undefined;
  }

  /** Online users, one entry per user id (anonymous connections are not users). */
  async getUsers(): Promise<SseUser[]> {
    return (await this.queryDetailed('users')).value as SseUser[];
  }

  async getUserIds(): Promise<string[]> {
    return (await this.queryDetailed('userIds')).value as string[];
  }

  async getAccessTokens(): Promise<string[]> {
    return (await this.queryDetailed('accessTokens')).value as string[];
  }

  async getTenantIds(): Promise<string[]> {
    return (await this.queryDetailed('tenantIds')).value as string[];
  }

  async getChannels(): Promise<string[]> {
    return (await this.queryDetailed('channels')).value as string[];
  }

  /** Distinct online user ids. */
  async getUserCount(): Promise<number> {
    return (await this.getUserIds()).length;
  }

  async getAccessTokenCount(): Promise<number> {
    return (await this.getAccessTokens()).length;
  }

  async getConnectionCount(): Promise<number> {
    return (await this.queryDetailed('connectionCount')).value as number;
  }

  /** Users with a connection listening to `event`, optionally within one tenant. */
  async getUsersListening(event: string, tenantId?: Key): Promise<SseUser[]> {
    const ids = new Set(await this.getUserIdsListening(event, tenantId));
    return (await this.getUsers()).filter((u) => ids.has(String(keyOf(u.id))));
  }

  async getUserIdsListening(event: string, tenantId?: Key): Promise<string[]> {
    return (await this.queryDetailed('userIdsListening', [event, keyOf(tenantId) ?? null])).value as string[];
  }

  /** Snapshots of the connections that match every field of `filter`. */
  async getConnections(filter: ConnectionFilter = {}): Promise<ConnectionInfo[]> {
    return (await this.queryDetailed('connections', [normalizeFilter(filter)])).value as ConnectionInfo[];
  }

  async getConnectionById(id: string): Promise<ConnectionInfo | undefined> {
    const local = this.getLocalConnection(id);
    if (local !== undefined) return local.toInfo();
    if (typeof id !== 'string') return undefined;
    return (await this.#query<ConnectionInfo | null>('connectionById', [id])).value.find((c) => c !== null) ?? undefined;
  }

  /**
   * Runs a query on this node and every peer and merges the answers. `partial` is true
   * when a peer did not answer (its part is missing).
   */
  async queryDetailed(name: QueryName, args: unknown[] = []): Promise<{ value: unknown; partial: boolean; failed: string[] }> {
    const local = this._localQuery(name, args);
    if (this.#cluster === undefined) return { value: local, partial: false, failed: [] };
    const remote = await this.#query<unknown>(name, args);
    return { value: mergeQuery(name, [local, ...remote.value]), partial: remote.failed.length > 0, failed: remote.failed };
  }

  async #query<T>(name: QueryName, args: unknown[]): Promise<{ value: T[]; failed: string[] }> {
    if (this.#cluster === undefined) return { value: [], failed: [] };
    const result = await this.#cluster.query<T>(name, args);
    return { value: result.values, failed: result.failed };
  }

  /** @internal Answers a query from this node's connections only. */
  _localQuery(name: QueryName, args: unknown[]): unknown {
    return this.#index.query(name, args);
  }

  // ---- control -------------------------------------------------------------------------

  /** Closes every connection of these users with `reason: 'kick'`. Resolves to the count closed (cluster-wide). */
  async disconnectByUserId(userIds: Key | readonly Key[], options?: DisconnectOptions): Promise<number> {
    return this.#disconnect('user', keysOf(userIds, 'userIds'), options?.reconnect ?? false, 'kick');
  }

  async disconnectByAccessToken(tokens: string | readonly string[], options?: DisconnectOptions): Promise<number> {
    return this.#disconnect('token', keysOf(tokens, 'accessTokens'), options?.reconnect ?? false, 'kick');
  }

  async disconnectByConnectionId(ids: string | readonly string[], options?: DisconnectOptions): Promise<number> {
    return this.#disconnect('connection', keysOf(ids, 'connectionIds'), options?.reconnect ?? false, 'kick');
  }

  /** Same as {@link Hub.disconnectByConnectionId}; kept for the Java API's plural name. */
  async disconnectByConnectionIds(ids: readonly string[], options?: DisconnectOptions): Promise<number> {
    return this.disconnectByConnectionId(ids, options);
  }

  /** @internal Acknowledges durable messages for these targets: here, and at the owning peers. */
  async _ack(refs: TargetRef[], messageIds: string[], connectionId: string): Promise<number> {
    if (this.#qos !== undefined) return this.#qos.ackFor(refs, messageIds, connectionId);
    if (this.#cluster === undefined || refs.length === 0) return 0;
    return this.#cluster.forwardAcks(messageIds.map((messageId) => ({ messageId, targets: refs })), connectionId, 'ack');
  }

  /** @internal Ends a connection the client says it left (`disconnect.do`), wherever it is. */
  async _clientLeft(connectionId: string): Promise<number> {
    return this.#disconnect('connection', [connectionId], true, 'client');
  }

  async #disconnect(kind: ClusterTargetKind, keys: string[], reconnect: boolean, reason: 'kick' | 'client'): Promise<number> {
    let count = this._localDisconnect(kind, keys, reconnect, reason);
    if (this.#cluster === undefined || keys.length === 0) return count;
    const remoteKeys = this.#remoteKeys(kind, keys);
    if (remoteKeys.length === 0) return count;
    for (const n of (await this.#cluster.disconnect(kind, remoteKeys, reconnect, reason)).values) count += n;
    return count;
  }

  /** @internal */
  _localDisconnect(kind: ClusterTargetKind, keys: string[], reconnect: boolean, reason: 'kick' | 'client'): number {
    let count = 0;
    for (const conn of [...this._targets(kind, keys)]) {
      if (conn.closed) continue;
      conn.close(reason, reconnect);
      count++;
    }
    return count;
  }

  // ---- online time ---------------------------------------------------------------------

  /**
   * Tells these users' clients their accumulated online time (`sse-set-duration`). A user
   * who is offline everywhere gets it on their next connect to this node. Resolves to the
   * connections written now.
   */
  async setDurationByUserId(userIds: Key | readonly Key[], seconds: number): Promise<number> {
    return this.#setDuration('user', keysOf(userIds, 'userIds'), seconds);
  }

  async setDurationByAccessToken(tokens: string | readonly string[], seconds: number): Promise<number> {
    return this.#setDuration('token', keysOf(tokens, 'accessTokens'), seconds);
  }

  /** A connection that is gone cannot come back under the same id: nothing is kept for later. */
  async setDurationByConnectionId(ids: string | readonly string[], seconds: number): Promise<number> {
    return this.#setDuration('connection', keysOf(ids, 'connectionIds'), seconds);
  }

  async #setDuration(kind: 'user' | 'token' | 'connection', keys: string[], seconds: number): Promise<number> {
    assertSeconds(seconds);
    const counts = new Map(keys.map((key) => [key, this._localDuration(kind, [key], seconds)]));
    const remoteKeys = this.#cluster === undefined ? [] : this.#remoteKeys(kind, keys);
    if (remoteKeys.length > 0) {
      // One round trip for all keys; each peer answers a count per key.
      for (const perKey of (await this.#cluster!.duration(kind, remoteKeys, seconds)).values) {
        remoteKeys.forEach((key, i) => counts.set(key, counts.get(key)! + Number(perKey[i] ?? 0)));
      }
    }
    let total = 0;
    for (const [key, count] of counts) {
      if (count === 0 && kind !== 'connection') this.#pendingDurations.set(kind, key, seconds);
      total += count;
    }
    return total;
  }

  /** The keys peers must be asked about: all of them, except connection ids held here. */
  #remoteKeys(kind: ClusterTargetKind, keys: string[]): string[] {
    return kind === 'connection' ? keys.filter((id) => this.#index.get(id) === undefined) : keys;
  }

  /** @internal */
  _localDuration(kind: ClusterTargetKind, keys: string[], seconds: number): number {
    let count = 0;
    for (const conn of [...this._targets(kind, keys)]) if (this.#writeDuration(conn, seconds)) count++;
    return count;
  }

  #writeDuration(conn: Connection, seconds: number): boolean {
    conn.sessionDuration = seconds;
    return conn.write(encodeFrame({ event: 'sse-set-duration', data: { duration: seconds } }));
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
      for (const conn of [...this.#index.values()]) {
        if (conn.expiresAt <= now) conn.close('expired', true);
        else if (conn.expiresAt < next) next = conn.expiresAt;
      }
      this.#nextExpiry = next;
    }
    if (now - this.#lastHeartbeat >= this.options.heartbeatMs - 5) {
      this.#lastHeartbeat = now;
      for (const conn of this.#index.values()) conn.write(HEARTBEAT_FRAME, 0);
    }
  }

  /**
   * Graceful shutdown: refuses new streams; tells every client `connect-close {reason:
   * 'shutdown', reconnect: true}` with a random `retry:` (so that they come back spread over
   * `reconnectTimeMs`, to another node if there is one); waits up to `drainMs` for those last
   * frames to be written; leaves the cluster (mDNS goodbye); commits and closes the durable
   * store. A send accepted before `close` was called is committed, never lost.
   */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const conns = [...this.#index.values()];
    const spread = this.options.reconnectTimeMs;
    for (const conn of conns) conn.close('shutdown', true, Math.round(250 + Math.random() * spread));
    this.#stopTimer();
    await Promise.all(conns.map((conn) => conn._ended(options.drainMs ?? 2000)));
    await this.#cluster?.close();
    this.#qos?.close();
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

/** A filter that crosses the wire: keys as strings (bigint does not survive JSON). */
function normalizeFilter(filter: ConnectionFilter): ConnectionFilter {
  const out: ConnectionFilter = {};
  for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = keyOf(v);
  return out;
}

function assertSeconds(seconds: number): void {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError(`seconds must be a non-negative number, got ${String(seconds)}`);
  }
}
