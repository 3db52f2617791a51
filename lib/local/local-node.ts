import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HubStats } from '../core/admin-api.js';
import type { ClientInfo } from '../core/client-info.js';
import type { MemberState } from '../core/channels.js';
import { SseClosedError, SseTooManyChannelsError, SseTooManyConnectionsError, SseTooManyListenersError } from '../core/errors.js';
import { encodeFrame, HEARTBEAT_FRAME } from '../core/frame.js';
import type { QueryAnswer, QueryArgs, QueryName } from '../core/queries.js';
import type { SendTargetKind } from '../core/targets.js';
import { keyOf, type SseUser } from '../core/user.js';
import { Connection, type CloseReason, type DurationRecord, type RequestInfo } from './connection.js';
import { newConnectionId } from './connection-id.js';
import { ConnectionIndex } from './connection-index.js';
import { LeaveQueue, type PendingLeave } from './leave-queue.js';
import { baseLifetime, type KeepaliveChoice, type KeepaliveZero } from './lifetime.js';
import { OnceListeners, type OnceListenerKind } from './once-listeners.js';
import { PendingDurations } from './pending-durations.js';
import { RecoveryHold, type StreamRecovery } from './recovery-hold.js';
import { prepareStreamSocket } from './stream-socket.js';

/** The settings the local node works with: the hub's options with every default applied. */
export interface LocalNodeOptions {
  name: string;
  version: string;
  heartbeatMs: number;
  /** TCP_USER_TIMEOUT of every stream's socket, in ms; 0: not set (the kernel's retransmissions decide). */
  deadStreamTimeoutMs: number;
  reconnectTimeMs: number;
  maxLifetimeMs: number;
  minLifetimeMs: number;
  /** Whether the client's `keepaliveTime` or the server's `maxLifetimeMs` sets a stream's lifetime. */
  keepaliveChoice: KeepaliveChoice;
  /** What a chosen lifetime of 0 means: `maxLifetimeMs`, or never expires. */
  keepaliveZero: KeepaliveZero;
  lifetimeJitter: number;
  clientIdMaxConnections: number;
  maxConnectionsPerUser: number;
  maxConnections: number;
  writeBufferLimit: number;
  maxListenersPerConnection: number;
  /** Most channels one connection joins at runtime. */
  maxChannelsPerConnection: number;
  /** How long a user's leave from a channel is held before it counts (a reconnect within it cancels it), in ms. */
  leaveDelayMs: number;
}

/** How a layer above takes part in one {@link LocalNode.deliver} (durable delivery: replays, acks by write). */
export interface DeliverHooks {
  /** Asked of each connection before the write: true when the caller takes care of it instead (reached, not written now). */
  leave?: (conn: Connection) => boolean;
  /** Sees each connection written. */
  written?: (conn: Connection) => void;
}

/** Why the server closes connections on request: a kick, the client's own leaving, or the per-browser cap. */
export type DisconnectReason = 'kick' | 'client' | 'evicted';

/** How a stream is opened: everything the node needs from the HTTP layer. */
export interface OpenStreamInit {
  req: IncomingMessage;
  res: ServerResponse;
  user: SseUser;
  client: ClientInfo;
  request: RequestInfo;
  /**
   * Channels to join before `connect-finish` (already authorized: the HTTP layer runs
   * `authorizeChannel` on the connect parameter `channels`). Past `maxChannelsPerConnection`
   * the rest are dropped.
   */
  channels?: readonly string[];
  /**
   * More headers for the stream's head, sent with its own in one `writeHead` (the plugin's
   * `X-Sse-Version` and server id). Pass the same object each time: the merged head is kept
   * for the last one.
   */
  headers?: Readonly<Record<string, string>>;
}

/** What a runtime join or leave changed (third argument of `channels-change`). */
export interface ChannelsChange {
  joined: string[];
  left: string[];
}

/** Payload of the `listeners-change` event. */
export interface ListenersChange {
  connection: Connection;
  before: string[];
  after: string[];
  /** Names that were not in the set before. */
  added: string[];
}

/** Events of the local node. */
export interface LocalNodeEvents {
  /** A stream opened and is in every index; `connect-finish` has been written. */
  connect: [connection: Connection];
  /** A stream ended and has left every index. */
  disconnect: [connection: Connection, reason: CloseReason];
  'listeners-change': [change: ListenersChange];
  /**
   * A connection's runtime channels changed after it opened (a join or a leave); `channels`
   * is the new list. The channels it opened with are on the connection at `connect`, and it
   * leaves them all at `disconnect`: neither emits this.
   */
  'channels-change': [connection: Connection, channels: string[], change: ChannelsChange];
  /**
   * A user's first connection on this node became a member of a channel, and no leave of
   * theirs from it was pending here. Whether they are new to the channel cluster-wide is for
   * the cluster layer to find out (`PresenceTracker`).
   */
  'member-arrived': [channel: string, userId: string, since: number];
  /**
   * A user's last connection on this node left a channel `leaveDelayMs` ago and none came
   * back here. The listener decides and then calls {@link LocalNode.settleLeave}; without a
   * listener it is forgotten at once.
   */
  'member-gone': [leave: PendingLeave];
  /**
   * A user whose leave was held here for a vanished peer ({@link LocalNode.holdPeerLeave})
   * came back to the channel here: no presence news (they never left), but the peers should
   * learn that this node holds them now.
   */
  'member-moved': [channel: string, userId: string];
  /**
   * An online-time value kept for an offline user or token ({@link LocalNode.keepDuration})
   * was given to its new connection here (just before `connect`): the same value kept on other nodes
   * is now stale.
   */
  'kept-duration-used': [kind: 'user' | 'token', key: string];
  /** A listener threw; reported, never propagated into the code that emitted. */
  error: [error: unknown];
}

/** Stream headers: never cached, transformed or buffered by a proxy. */
const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
};

/**
 * The connections of this process, and everything done to them here: opening a stream,
 * delivering a frame to the connections a target reaches, answering queries from them,
 * disconnecting, online time, heartbeats and lifetimes (one timer), and running totals.
 * Knows nothing of durable delivery or the cluster: those layers sit above and listen to
 * its events.
 */
export class LocalNode extends EventEmitter<LocalNodeEvents> {
  readonly options: LocalNodeOptions;
  /** Running totals since the node was created. */
  readonly stats: HubStats = { eventsSent: 0, eventsFailed: 0, bytesSent: 0, connects: 0, disconnects: 0, slowCloses: 0 };
  /** Sent in `connect-finish.enableCluster`. */
  clustered = false;
  /** The recovery window, when on (set by the hub); `connect-finish` names its epoch. */
  recovery: StreamRecovery | undefined;
  readonly #index = new ConnectionIndex();
  readonly #pendingDurations = new PendingDurations();
  readonly #onceConnect = new OnceListeners<(connection: Connection) => void>();
  readonly #onceDisconnect = new OnceListeners<(connection: Connection, reason: CloseReason) => void>();
  readonly #onEnd = (conn: Connection, reason: CloseReason): void => this.#remove(conn, reason);
  #timer: NodeJS.Timeout | undefined;
  #lastHeartbeat = 0;
  #nextExpiry = Infinity;
  #closed = false;
  #closing = false;
  readonly #leaves: LeaveQueue;
  /** Writes each stream's first frames: `connect-finish`, and what a resuming stream missed (held while the peers answer). */
  readonly #recoveryHold: RecoveryHold;
  /** The stream head with the last `headers` an open passed (see #headWith). */
  #head: { extra: Readonly<Record<string, string>>; fields: Readonly<Record<string, string>> } | undefined;

  constructor(options: LocalNodeOptions) {
    super();
    this.options = options;
    this.#recoveryHold = new RecoveryHold(options, { clustered: () => this.clustered, recovery: () => this.recovery }, (err) =>
      this.emit('error', err),
    );
    this.#leaves = new LeaveQueue(options.leaveDelayMs, (leave) => {
      if (this.listenerCount('member-gone') === 0) this.#leaves.settle(leave);
      else this.#emitSafe('member-gone', leave);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Open streams on this node. */
  get size(): number {
    return this.#index.size;
  }

  /**
   * Opens a stream on `res` and registers it. Throws (before any byte is written) when the
   * node is closed or a connection cap is reached.
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
    if (client.listeners.length > o.maxListenersPerConnection) throw new SseTooManyListenersError(o.maxListenersPerConnection);
    const base = baseLifetime(o.keepaliveChoice, client.keepaliveTime, o.minLifetimeMs, o.maxLifetimeMs, o.keepaliveZero);
    const lifetime = Math.round(base * (1 - Math.random() * o.lifetimeJitter));
    prepareStreamSocket(init.req.socket, o.deadStreamTimeoutMs);
    init.res.writeHead(200, init.headers === undefined ? STREAM_HEADERS : this.#headWith(init.headers));
    const conn = new Connection({
      id: newConnectionId(),
      res: init.res,
      onEnd: this.#onEnd,
      user,
      userId,
      accessToken: keyOf(user.accessToken),
      tenantId: keyOf(user.tenantId),
      client,
      request: init.request,
      expiresAt: Date.now() + lifetime,
      writeBufferLimit: o.writeBufferLimit,
      meter: this.stats,
    });

    if (init.channels !== undefined) {
      const at = Date.now();
      for (const channel of init.channels.slice(0, o.maxChannelsPerConnection)) conn.addChannel(channel, at);
    }

    this.stats.connects++;
    this.#index.add(conn);
    if (conn.expiresAt < this.#nextExpiry) this.#nextExpiry = conn.expiresAt;
    this.#startTimer();

    this.#recoveryHold.start(conn);

    // Before any eviction below: a tab replaced by this one is no leave and this one no arrival.
    if (userId !== undefined) for (const channel of conn.memberships()) this.#memberArrived(conn, userId, channel);

    // The cap is per browser (clientId) and site: the oldest tab of that browser goes.
    if (conn.clientKey !== undefined) {
      const siblings = this.#index.siblings(conn);
      if (siblings.length > o.clientIdMaxConnections) {
        for (const old of siblings.slice(0, siblings.length - o.clientIdMaxConnections)) old.close('evicted', false);
      }
    }

    const pending = this.#pendingDurations.take(conn);
    if (pending !== undefined) {
      this.#writeDuration(conn, pending.seconds);
      this.#emitSafe('kept-duration-used', pending.kind, pending.key);
    }
    this.#emitSafe('connect', conn);
    for (const listener of this.#onceConnect.take(conn)) this.#callSafe(() => listener(conn));
    return conn;
  }

  /**
   * The stream head with `extra` added, kept for the last `extra`. Headers an app set on the
   * response before still count: Node merges them (its slower path, a `setHeader` each).
   */
  #headWith(extra: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    if (this.#head?.extra !== extra) this.#head = { extra, fields: Object.freeze({ ...STREAM_HEADERS, ...extra }) };
    return this.#head.fields;
  }

  #remove(conn: Connection, reason: CloseReason): void {
    if (!this.#index.has(conn)) return;
    this.#index.delete(conn);
    this.stats.disconnects++;
    if (reason === 'slow') this.stats.slowCloses++;
    if (this.#index.size === 0) this.#stopTimer();
    const userId = conn.userId;
    if (userId !== undefined) for (const channel of conn.memberships()) this.#memberLeft(conn, userId, channel);
    this.#emitSafe('disconnect', conn, reason);
    for (const listener of this.#onceDisconnect.take(conn)) this.#callSafe(() => listener(conn, reason));
  }

  // ---- one-shot listeners ----------------------------------------------------------------

  /**
   * Calls `listener` once, at the next connect of this user, token or channel on this node
   * (after the `connect` event); with `channel`, only a connection in that channel. Answers a
   * function that removes it. At most 10,000 wait at once, per kind of event (a RangeError beyond).
   */
  onceConnect(kind: OnceListenerKind, key: string, listener: (connection: Connection) => void, channel?: string): () => void {
    return this.#onceConnect.add(kind, key, listener, channel);
  }

  /** Same as {@link LocalNode.onceConnect}, at the next end of such a connection (after the `disconnect` event). */
  onceDisconnect(kind: OnceListenerKind, key: string, listener: (connection: Connection, reason: CloseReason) => void, channel?: string): () => void {
    return this.#onceDisconnect.add(kind, key, listener, channel);
  }

  /** Live connections of this node. */
  connections(): IterableIterator<Connection> {
    return this.#index.values();
  }

  /** The live connection with this id. */
  get(id: string): Connection | undefined {
    return typeof id === 'string' ? this.#index.get(id) : undefined;
  }

  /** Live streams of one browser (a `Connection.clientKey`), oldest first: for the cluster-wide cap. */
  siblingsByKey(key: string): Connection[] {
    return typeof key === 'string' ? this.#index.siblingsByKey(key) : [];
  }

  /** The live connections a target of this kind and keys reaches, each once. */
  targets(kind: SendTargetKind, keys: string[]): Iterable<Connection> {
    return this.#index.targets(kind, keys);
  }

  // ---- listeners -----------------------------------------------------------------------

  /**
   * Adds or removes event names of a connection's listener set; emits `listeners-change`.
   * Returns the new set. An addition that would take the set past `maxListenersPerConnection`
   * changes nothing and throws `ERR_SSE_TOO_MANY_LISTENERS`.
   */
  changeListeners(conn: Connection, names: readonly string[], add: boolean): string[] {
    if (add) {
      let fresh = 0;
      for (const name of new Set(names)) if (!conn.listeners.has(name)) fresh++;
      const limit = this.options.maxListenersPerConnection;
      if (conn.listeners.size + fresh > limit) throw new SseTooManyListenersError(limit);
    }
    const before = [...conn.listeners];
    const added: string[] = [];
    for (const name of names) {
      if (add && conn.addListener(name)) {
        added.push(name);
        if (!conn.closed) this.#index.addListener(conn, name);
      } else if (!add && conn.deleteListener(name)) {
        this.#index.deleteListener(conn, name);
      }
    }
    const after = [...conn.listeners];
    if (after.length !== before.length) this.#emitSafe('listeners-change', { connection: conn, before, after, added });
    return after;
  }

  // ---- channels and presence ------------------------------------------------------------

  /**
   * Joins or leaves runtime channels (names already checked); emits `channels-change` when
   * something changed. Returns the connection's runtime channels after the change. A join
   * that would take it past `maxChannelsPerConnection` changes nothing and throws
   * `ERR_SSE_TOO_MANY_CHANNELS`. The fixed `channel` cannot be left; joining it at runtime
   * records it (so that a reconnect restores it) without a second membership.
   */
  changeChannels(conn: Connection, names: readonly string[], join: boolean): string[] {
    return this.#changeChannels(conn, names, join).channels;
  }

  #changeChannels(conn: Connection, names: readonly string[], join: boolean): { channels: string[]; changed: boolean } {
    if (!this.#index.has(conn)) return { channels: conn.channels, changed: false };
    if (join) {
      const current = new Set(conn.channels);
      let fresh = 0;
      for (const name of new Set(names)) if (!current.has(name)) fresh++;
      const limit = this.options.maxChannelsPerConnection;
      if (conn.channelCount + fresh > limit) throw new SseTooManyChannelsError(limit);
    }
    const userId = conn.userId;
    const joined: string[] = [];
    const left: string[] = [];
    const now = Date.now();
    for (const name of names) {
      if (join) {
        if (!conn.addChannel(name, now)) continue;
        joined.push(name);
        if (name === conn.channel) continue;
        this.#index.addChannel(conn, name);
        if (userId !== undefined) this.#memberArrived(conn, userId, name);
      } else {
        if (!conn.deleteChannel(name)) continue;
        left.push(name);
        if (name === conn.channel) continue;
        this.#index.deleteChannel(conn, name);
        if (userId !== undefined) this.#memberLeft(conn, userId, name);
      }
    }
    const channels = conn.channels;
    const changed = joined.length > 0 || left.length > 0;
    if (changed) this.#emitSafe('channels-change', conn, channels, { joined, left });
    return { channels, changed };
  }

  /**
   * A server-side join or leave for every connection a target reaches here: each one changed
   * is told its runtime channels in an `sse-channels` event (so that the page restores them
   * after a reconnect). A connection the join would take past `maxChannelsPerConnection` is
   * left as it is. Returns the count of connections changed.
   */
  changeChannelsOf(kind: 'connection' | 'user' | 'token', keys: string[], names: readonly string[], join: boolean): number {
    let count = 0;
    for (const conn of [...this.#index.targets(kind, keys)]) {
      let change: { channels: string[]; changed: boolean };
      try {
        change = this.#changeChannels(conn, names, join);
      } catch (err) {
        if (err instanceof SseTooManyChannelsError) continue;
        throw err;
      }
      if (!change.changed) continue;
      const channels = change.channels;
      conn.writeProtocol(encodeFrame({ event: 'sse-channels', data: { channels } }));
      count++;
    }
    return count;
  }

  /** This node's part of a user's membership in a channel: when their earliest live connection joined it, and a leave held here. */
  memberState(channel: string, userId: string): MemberState {
    let since: number | null = null;
    for (const conn of this.#index.ofUser(userId)) {
      const at = conn.joinedAt(channel);
      if (at !== undefined && (since === null || at < since)) since = at;
    }
    return { since, leftAt: this.#leaves.get(channel, userId)?.leftAt ?? null, announcedLeftAt: this.#leaves.announcedAt(channel, userId) ?? null };
  }

  /** Ends the decision on a `member-gone` leave: true if it still stands (the user did not come back here meanwhile). */
  settleLeave(leave: PendingLeave): boolean {
    return this.#leaves.settle(leave);
  }

  /** A settled leave was announced cluster-wide from here: peers deciding the same leave now learn it is covered. */
  leaveAnnounced(leave: PendingLeave): void {
    this.#leaves.announced(leave);
  }

  /**
   * A peer that held `userId` in `channel` vanished (or left): holds their leave here, as if
   * their last connection here had just left, so that it is announced after `leaveDelayMs`
   * unless they come back to the channel somewhere meanwhile. Nothing when they are live in
   * the channel here, or a leave of theirs is held here already (it decides).
   */
  holdPeerLeave(channel: string, userId: string, peer: string): void {
    if (this.#closed || this.#leaves.get(channel, userId) !== undefined) return;
    for (const conn of this.#index.ofUser(userId)) if (conn.memberOf(channel)) return;
    this.#leaves.add(channel, userId, Date.now(), peer);
  }

  /** The users held here per channel, for the channels `wanted` accepts: a peer's snapshot of this node. */
  members(wanted: (channel: string) => boolean): [channel: string, userIds: string[]][] {
    // null: a channel `wanted` refused (asked once per channel, not per connection).
    const byChannel = new Map<string, Set<string> | null>();
    for (const conn of this.#index.values()) {
      const userId = conn.userId;
      if (userId === undefined) continue;
      for (const channel of conn.memberships()) {
        let users = byChannel.get(channel);
        if (users === undefined) byChannel.set(channel, (users = wanted(channel) ? new Set() : null));
        users?.add(userId);
      }
    }
    const out: [string, string[]][] = [];
    for (const [channel, users] of byChannel) if (users !== null) out.push([channel, [...users]]);
    return out;
  }

  /** `conn` (of `userId`) became a member of `channel`: presence news only for the user's first such connection here. */
  #memberArrived(conn: Connection, userId: string, channel: string): void {
    for (const other of this.#index.ofUser(userId)) if (other !== conn && other.memberOf(channel)) return;
    // Back before the leave delay ended: to everyone else they never left.
    const held = this.#leaves.get(channel, userId);
    if (held !== undefined && this.#leaves.cancel(channel, userId)) {
      if (held.peer !== undefined) this.#emitSafe('member-moved', channel, userId);
      return;
    }
    this.#emitSafe('member-arrived', channel, userId, conn.joinedAt(channel) ?? Date.now());
  }

  /** `conn` left `channel` (or ended): the user's leave is held if it was their last such connection here. */
  #memberLeft(conn: Connection, userId: string, channel: string): void {
    for (const other of this.#index.ofUser(userId)) if (other !== conn && other.memberOf(channel)) return;
    if (this.#closed) return;
    this.#leaves.add(channel, userId, Date.now());
  }

  // ---- delivery, queries, control --------------------------------------------------------

  /**
   * Writes one encoded frame to every connection the target reaches (with `listening`, only
   * those listening to `event`). Returns the count reached: written, or left to `hooks.leave`.
   */
  deliver(kind: SendTargetKind, keys: string[], frame: Buffer, event: string, listening: boolean, hooks?: DeliverHooks): number {
    let written = 0;
    let left = 0;
    for (const conn of this.#index.targets(kind, keys)) {
      if (listening && !conn.listeners.has(event)) continue;
      if (hooks?.leave?.(conn) === true) {
        left++;
        continue;
      }
      if (!conn.write(frame)) continue;
      written++;
      hooks?.written?.(conn);
    }
    // The totals (stats) are counted by each connection's write, whichever path wrote it.
    return written + left;
  }

  /** Answers a query from this node's connections only. */
  query<N extends QueryName>(name: N, args: QueryArgs<N>): QueryAnswer<N> {
    return this.#index.query(name, args);
  }

  /**
   * Closes the connections a target reaches, with `record` written on each first (so that
   * `disconnect` listeners see it). Returns the count closed.
   */
  disconnect(kind: SendTargetKind, keys: string[], reconnect: boolean, reason: DisconnectReason, record?: DurationRecord): number {
    let count = 0;
    for (const conn of [...this.#index.targets(kind, keys)]) {
      if (conn.closed) continue;
      if (record !== undefined) conn.recordDurations(record);
      conn.close(reason, reconnect);
      count++;
    }
    return count;
  }

  /** Tells the connections a target reaches their online time (`sse-set-duration`). Returns the count written. */
  setDuration(kind: SendTargetKind, keys: string[], seconds: number): number {
    let count = 0;
    for (const conn of [...this.#index.targets(kind, keys)]) if (this.#writeDuration(conn, seconds)) count++;
    return count;
  }

  /** Keeps an online-time value for a user or token that is offline, for its next connect. */
  keepDuration(kind: 'user' | 'token', key: string, seconds: number): void {
    this.#pendingDurations.set(kind, key, seconds);
  }

  /** Drops the online-time value kept for a user or token (given on another node). Answers whether there was one. */
  forgetDuration(kind: 'user' | 'token', key: string): boolean {
    return this.#pendingDurations.delete(kind, key);
  }

  /**
   * Clears online time: the `sessionDuration` of the connections a target reaches, and the
   * value kept for an offline user or token. Returns the count of connections cleared.
   */
  clearDuration(kind: SendTargetKind, keys: string[]): number {
    let count = 0;
    for (const conn of this.#index.targets(kind, keys)) {
      if (conn.sessionDuration === undefined) continue;
      conn.sessionDuration = undefined;
      count++;
    }
    if (kind === 'user' || kind === 'token') for (const key of keys) this.#pendingDurations.delete(kind, key);
    return count;
  }

  #writeDuration(conn: Connection, seconds: number): boolean {
    conn.sessionDuration = seconds;
    return conn.writeProtocol(encodeFrame({ event: 'sse-set-duration', data: { duration: seconds } }));
  }

  // ---- timer, shutdown -----------------------------------------------------------------

  /**
   * One timer per node, not per connection: heartbeats and lifetime expiry. Runs only while
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
   * Refuses new streams from now on (`open` throws `ERR_SSE_CLOSED`); the open ones go on until
   * {@link LocalNode.close}. The hub's shutdown refuses first, then releases the durable store,
   * then says goodbye to the streams.
   */
  refuse(): void {
    this.#closed = true;
  }

  /**
   * Refuses new streams, tells every client to come back (`connect-close {reason:
   * 'shutdown', reconnect: true}` with a random `retry:` so that they return spread over
   * `reconnectTimeMs`), and waits up to `drainMs` for those last frames to be written.
   */
  async close(drainMs: number): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#closed = true;
    const conns = [...this.#index.values()];
    const spread = this.options.reconnectTimeMs;
    for (const conn of conns) conn.close('shutdown', true, Math.round(250 + Math.random() * spread));
    this.#stopTimer();
    this.#leaves.clear();
    await Promise.all(conns.map((conn) => conn.finished(drainMs)));
  }

  /** Runs a one-shot listener; what it throws is reported, never thrown into the open or close that called it. */
  #callSafe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.emit('error', err);
    }
  }

  #emitSafe<K extends Exclude<keyof LocalNodeEvents, 'error'>>(event: K, ...args: LocalNodeEvents[K]): void {
    // Every stream opened and closed passes here; most events have no listener at all.
    if (this.listenerCount(event) === 0) return;
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (err) {
      this.emit('error', err);
    }
  }
}
