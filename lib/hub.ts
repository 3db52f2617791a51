import { EventEmitter } from 'node:events';
import { PresenceTracker, type PresenceTrackerEvents } from './cluster/presence-tracker.js';
import { Cluster, type ClusterEvents, type FanOut } from './cluster/cluster.js';
import { createTransport } from './cluster/cluster-options.js';
import { DurableCluster } from './cluster/durable-cluster.js';
import { mergeQuery } from './cluster/merge.js';
import { WindowCluster } from './cluster/window-recovery.js';
import type { SendItem } from './cluster/messages.js';
import { RemoteConnection } from './cluster/remote-connection.js';
import type { HubStats } from './core/admin-api.js';
import type { ConnectionHandle } from './core/connection-handle.js';
import type { ConnectionInfo } from './core/connection-info.js';
import { channelNamesOf, type ChannelPresence, type ChannelTarget, type PresenceNotice } from './core/channels.js';
import { SseQosDisabledError, SseUnknownConnectionError, SseUnsupportedError } from './core/errors.js';
import type { EventMap, EventName, SendArgs } from './core/event-map.js';
import { encodeFrame, encodeFrameWithOwnId, serializeData } from './core/frame.js';
import type { ConnectionFilter, QueryAnswer, QueryArgs, QueryName } from './core/queries.js';
import type { SendTargetKind } from './core/targets.js';
import { keyOf, keysOf, type Key, type SseUser } from './core/user.js';
import { VERSION } from './core/version.js';
import { checkHubOptions, resolveHubOptions, resolvePresenceOptions, type HubOptions, type ResolvedPresenceOptions } from './hub-options.js';
import type { CloseReason, Connection, DurationRecord } from './local/connection.js';
import { LocalNode, type DisconnectReason, type LocalNodeEvents, type LocalNodeOptions, type OpenStreamInit } from './local/local-node.js';
import type { OnceListenerKind } from './local/once-listeners.js';
import { resolveRecovery } from './local/recovery-options.js';
import { RecoveryWindow } from './local/recovery-window.js';
import { userTimeoutUnavailable } from './local/tcp-user-timeout.js';
import { Qos, type QosEvents } from './qos/qos.js';
import type { TypedQos } from './qos/typed-qos.js';

export type { HubStats } from './core/admin-api.js';
export type { ChannelsChange, ListenersChange, OpenStreamInit } from './local/local-node.js';
export type { DurationRecord } from './local/connection.js';
export type { OnceListenerKind } from './local/once-listeners.js';

/** Options of every `send*` call. */
/** Options of {@link Hub.addConnectListener} and {@link Hub.addDisconnectListener}. */
export interface OnceListenerOptions {
  /** Only a connection in this channel (its fixed `channel`, or one joined at connect) takes the listener. Default: any. */
  channel?: string;
}

/** Options of {@link Hub.addConnectListener}. */
export interface ConnectListenerOptions extends OnceListenerOptions {
  /**
   * Also a connection of that user, token or channel already open on this node (the Java
   * `addConnectListener(accessToken, …)`): when there are any, the listener is called at once
   * for each of them and then is done; when there are none, it waits for the next connect.
   * Default `false`: only the next connect, so that a listener meant for "when they come back"
   * does not fire for a tab already open.
   */
  existing?: boolean;
}

export interface SendOptions {
  /** Deliver only to connections whose listener set contains the event name. Default `false`. */
  listening?: boolean;
  /**
   * Wait for every peer's count. `false`: a count-free send, which resolves at once with this
   * node's count only, and is forwarded to the peers without waiting for them (one-way on the
   * Redis engine: they answer nothing), so it costs no round trip; peers that fail are not
   * reported. Default `true`.
   */
  count?: boolean;
}

/** Options of every `disconnect*` call. */
export interface DisconnectOptions {
  /** Whether the client should reconnect by itself. Default `false`: a kick keeps it out. */
  reconnect?: boolean;
  /**
   * Seconds of the stream, kept as the connection attribute `duration` before it closes (the
   * Java `disconnectByUserId(userId, duration, sessionDuration)`). Default: not recorded.
   */
  duration?: number;
  /** Online seconds of the whole session, set as `sessionDuration` before it closes. Default: not recorded. */
  sessionDuration?: number;
}

/** What a client reports when it leaves (`disconnect.do`), for online-time accounting. */
export interface ClientLeaving {
  /** Online seconds of the whole session. */
  sessionDuration?: number;
  /** Seconds of this stream. Kept as the connection attribute `duration`. */
  duration?: number;
  /** The client's reason (≤ 64 characters). Kept as the attribute `disconnectReason`. */
  reason?: string;
}

/** A query's merged answer, and whether a peer's part is missing. */
export interface DetailedAnswer<T> {
  value: T;
  /**
   * A peer's part is missing: it failed or timed out, or it is known but down (still in the
   * static list or mDNS, not answering health checks). Never false while a peer is missing.
   */
  partial: boolean;
  /** Node ids of the peers whose part is missing. */
  failed: string[];
}

/** The arguments of query `N` as a parameter: optional for the queries that take none. */
export type ArgsParam<N extends QueryName> = QueryArgs<N> extends [] ? [args?: []] : [args: QueryArgs<N>];

/** Events of a hub: the layers' events, re-emitted (their payload types are the layers'). */
export interface HubEvents {
  /** A stream opened and is in every index; `connect-finish` has been written. */
  connect: LocalNodeEvents['connect'];
  /** A stream ended and has left every index. */
  disconnect: LocalNodeEvents['disconnect'];
  'listeners-change': LocalNodeEvents['listeners-change'];
  /**
   * A local connection's runtime channels changed (a join or a leave, by the page or the
   * server). The channels a stream opens with are on it at `connect`; at `disconnect` it leaves them all.
   */
  'channels-change': LocalNodeEvents['channels-change'];
  /**
   * A user's first connection in a channel joined, anywhere in the cluster: emitted once, by
   * the node where it joined (see {@link PresenceTracker} for the small races). Members of
   * the fixed `channel` connect parameter count too. Listen before connections arrive.
   */
  'presence-join': PresenceTrackerEvents['presence-join'];
  /** A user's last connection in a channel left everywhere `presence.leaveDelayMs` ago and none came back: emitted once. */
  'presence-leave': PresenceTrackerEvents['presence-leave'];
  /** A target acknowledged a durable message (or it was written to a client that cannot ack). */
  'qos-acked': QosEvents['qos-acked'];
  /** A durable message expired before a target acknowledged it. */
  'qos-expired': QosEvents['qos-expired'];
  /** A cluster peer proved it knows the secret and now takes part. */
  'peer-up': ClusterEvents['peer-up'];
  /** A cluster peer left or stopped answering. */
  'peer-down': ClusterEvents['peer-down'];
  /**
   * A peer's part of one operation is missing: it failed or timed out, it is known but down
   * (`ERR_SSE_PEER_DOWN`, not asked), or it got a send after its deadline (`ERR_SSE_PEER_LATE`).
   * That operation's result is partial.
   */
  'peer-error': ClusterEvents['peer-error'];
  /** One request to a peer finished (for metrics): how long it took and whether it succeeded. */
  'peer-rpc': ClusterEvents['peer-rpc'];
  /** A listener of the hub threw, or a background task failed; the plugin forwards these to `app.emit('error')`. */
  error: [error: unknown];
}

/**
 * One system's push API (one per mounted base path): send, query, disconnect, online time,
 * durable delivery, and the layers' events. Reachable as `ctx.sse`, `plugin.hub` or through
 * {@link createHub}. Every method returns a Promise so that code keeps working unchanged once
 * the hub is clustered and answers come from other nodes.
 *
 * The hub is a facade: it wires the layers (the local node, durable delivery, the cluster)
 * and answers "here, then at the peers"; each layer does its own work.
 *
 * @typeParam Events - the event map its send methods check (event name → payload type).
 * Default: any name, any payload. Durable sends (`hub.qos`) are checked too; `connection.send` is not.
 */
export class Hub<Events extends EventMap = Record<string, unknown>> extends EventEmitter<HubEvents> {
  readonly options: LocalNodeOptions;
  /** Presence options with their defaults. */
  readonly presenceOptions: ResolvedPresenceOptions;
  readonly #local: LocalNode;
  readonly #qos: Qos | undefined;
  /** The recovery window's side of the cluster (a window in a cluster), handed to the peers on close. */
  readonly #windowCluster: WindowCluster | undefined;
  readonly #cluster: Cluster | undefined;
  /** The recovery window of this node's ordinary sends (option `recovery`), when on. */
  readonly #window: RecoveryWindow | undefined;
  readonly #ready: Promise<void>;
  /** Settles with {@link Hub.ready}, never rejects: what sends and cluster queries wait for. */
  readonly #settled: Promise<void>;
  /** Whether {@link Hub.ready} has settled: until then sends and cluster queries wait for it. */
  #started = false;

  /**
   * @param nameGiven whether `options.name` is the app's own choice (@internal: the plugin
   * passes a name derived from its base path, which does not count for the Redis engine).
   */
  constructor(options: HubOptions = {}, nameGiven = options.name !== undefined) {
    super();
    this.options = resolveHubOptions(options, VERSION);
    this.presenceOptions = resolvePresenceOptions(options.presence, this.options.reconnectTimeMs);
    const local = (this.#local = new LocalNode(this.options));
    // Loaded now rather than at the first stream (the native part takes ~10 ms once).
    const noUserTimeout = this.options.deadStreamTimeoutMs > 0 ? userTimeoutUnavailable() : undefined;
    if (noUserTimeout !== undefined && options.deadStreamTimeoutMs !== undefined) {
      // Asked for explicitly: say so once (after the constructor, when the app listens). The default stays quiet.
      const error = new SseUnsupportedError(`deadStreamTimeoutMs is not applied: ${noUserTimeout}`);
      process.nextTick(() => this.reportError(error));
    }
    const recovery = resolveRecovery(options.recovery, options.cluster === undefined ? 0 : (options.cluster.timeoutMs ?? 1000) + 1000);
    const window = (this.#window = recovery === undefined ? undefined : new RecoveryWindow(recovery));
    let cluster: Cluster | undefined;
    if (options.cluster !== undefined) {
      const { transport, timeoutMs, group } = createTransport(options.cluster, this.options.name, { nameGiven });
      cluster = new Cluster(local, transport, { timeoutMs, group, interested: (channel) => this.#presenceWanted(channel) });
      local.clustered = true;
    }
    this.#cluster = cluster;
    // In a cluster the window has its own module: each node keeps its own sends and asks the
    // peers for theirs (LAN), or every node reads one Redis Stream (the Redis engine).
    const windowCluster =
      window === undefined || cluster === undefined ? undefined : new WindowCluster(cluster, window, cluster.sharedWindowLog(window));
    this.#windowCluster = windowCluster;
    if (window !== undefined)
      local.recovery = {
        get epoch() {
          return window.epoch;
        },
        recover: (from, who) => (windowCluster === undefined ? window.resume(from, who) : windowCluster.recover(from, who)),
      };
    // Durable delivery runs with a store of its own, or in a cluster for the messages peers own.
    // It subscribes to the local node before the hub does: a replay is under way before any
    // `connect` listener of the app can send.
    // In a cluster it answers the peers' durable requests through its own module of the cluster.
    const qos =
      options.qos !== undefined || cluster !== undefined
        ? new Qos(local, options.qos, cluster === undefined ? undefined : new DurableCluster(cluster), nameGiven)
        : undefined;
    this.#qos = qos;

    const report = (err: unknown): void => this.reportError(err);
    local.on('error', report);
    local.on('connect', (conn) => this.#emitSafe('connect', conn));
    local.on('disconnect', (conn, reason) => this.#emitSafe('disconnect', conn, reason));
    local.on('listeners-change', (change) => this.#emitSafe('listeners-change', change));
    local.on('channels-change', (conn, channels, change) => this.#emitSafe('channels-change', conn, channels, change));
    const presence = new PresenceTracker(local, cluster, (channel) => this.#presenceWanted(channel));
    presence.on('error', report);
    presence.on('presence-join', (change) => this.#presenceNews(change.channel, change.userId, 'join'));
    presence.on('presence-leave', (change) => this.#presenceNews(change.channel, change.userId, 'leave'));
    if (qos !== undefined) {
      qos.on('error', report);
      qos.on('qos-acked', (event) => this.#emitSafe('qos-acked', event));
      qos.on('qos-expired', (event) => this.#emitSafe('qos-expired', event));
    }
    if (cluster === undefined) {
      this.#ready = Promise.resolve();
      this.#settled = this.#ready;
      this.#started = true;
    } else {
      cluster.on('error', report);
      cluster.on('peer-up', (peer) => {
        this.#emitSafe('peer-up', peer);
        // A node that (re)joins may hold durable messages for users connected here meanwhile.
        if (peer.qosTag !== undefined) qos!.pullFrom(peer.nodeId);
        windowCluster?.learnEpoch(peer.nodeId);
      });
      cluster.on('peer-down', (nodeId) => {
        windowCluster?.peerDown(nodeId);
        this.#emitSafe('peer-down', nodeId);
      });
      cluster.on('peer-error', (info) => this.#emitSafe('peer-error', info));
      cluster.on('peer-rpc', (info) => this.#emitSafe('peer-rpc', info));
      this.#ready = cluster.start().then(() => windowCluster?.start());
      // A failed start was reported (`error`); the node then serves its own connections and
      // joins when it can (the Redis engine retries), so sends go on after it, locally.
      this.#settled = this.#ready.then(
        () => {
          this.#started = true;
        },
        (err: unknown) => {
          this.#started = true;
          report(err);
        },
      );
    }
  }

  /**
   * Resolves once the hub's cluster node is listening (at once without a cluster); rejects if it
   * cannot start (also reported through `error`; the node then serves its own connections and
   * joins when it can). Sends and cluster-wide queries made before wait for it to settle: their
   * counts never silently leave out peers that were about to be known.
   */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** The cluster side of this hub, if clustered: its node id and peers. */
  get cluster(): Cluster | undefined {
    return this.#cluster;
  }

  /** Durable delivery (see {@link Qos}), its sends checked against the hub's event map. Throws `ERR_SSE_QOS_DISABLED` without the `qos` option. */
  get qos(): TypedQos<Events> {
    if (this.#qos?.hasStore !== true) throw new SseQosDisabledError();
    return this.#qos as TypedQos<Events>;
  }

  /** Whether durable delivery is configured (the `qos` option). */
  get hasQos(): boolean {
    return this.#qos?.hasStore === true;
  }

  get name(): string {
    return this.options.name;
  }

  get closed(): boolean {
    return this.#local.closed;
  }

  /** Running totals since the hub was created (this node only). */
  get stats(): HubStats {
    return this.#local.stats;
  }

  // ---- streams -------------------------------------------------------------------------

  /**
   * Opens a stream on `res` and registers it. Throws (before any byte is written) when the
   * hub is closed or a connection cap is reached. Used by the plugin; usable with plain
   * `node:http` too.
   */
  open(init: OpenStreamInit): Connection {
    return this.#local.open(init);
  }

  /** Live local connections. */
  connections(): IterableIterator<Connection> {
    return this.#local.connections();
  }

  /** The live local connection with this id. */
  getLocalConnection(id: string): Connection | undefined {
    return this.#local.get(id);
  }

  /**
   * A handle on the connection with this id wherever it is held: this node's own
   * `Connection`, or a {@link RemoteConnection} snapshot from the peer that holds it.
   * `accessToken`: the caller's token, given to a remote handle once its hash matched.
   */
  async findConnection(id: string, accessToken?: string): Promise<ConnectionHandle | undefined> {
    const local = this.#local.get(id);
    if (local !== undefined) return local;
    if (this.#cluster === undefined || typeof id !== 'string') return undefined;
    const info = await this.getConnectionById(id);
    if (info === undefined) return undefined;
    return new RemoteConnection(info, accessToken, async (event, data) => (await this.#send('connection', [id], event, data, undefined)) > 0);
  }

  // ---- listeners -----------------------------------------------------------------------

  /** Adds event names to a connection's listener set; emits `listeners-change`. Returns the new set. */
  addListeners(conn: Connection, names: readonly string[]): string[] {
    return this.#local.changeListeners(conn, names, true);
  }

  /** Removes event names from a connection's listener set; emits `listeners-change`. */
  removeListeners(conn: Connection, names: readonly string[]): string[] {
    return this.#local.changeListeners(conn, names, false);
  }

  /** Changes the listener set of a connection wherever it is held. Rejects with `ERR_SSE_UNKNOWN_CONNECTION` when it is gone. */
  async changeListeners(connectionId: string, names: readonly string[], add: boolean): Promise<string[]> {
    const local = this.#local.get(connectionId);
    if (local !== undefined) return this.#local.changeListeners(local, names, add);
    const current = await this.#cluster?.changeListeners(connectionId, [...names], add);
    if (current === undefined) throw new SseUnknownConnectionError(connectionId);
    return current;
  }

  // ---- sending -------------------------------------------------------------------------

  /**
   * Sends to every connection. Resolves to the number of connections written to (cluster-wide).
   * With an event map (`Hub<Events>`), `event` is one of its names and `data` its payload.
   */
  async sendAll<K extends EventName<Events>>(event: K, ...[data, options]: SendArgs<Events[K], SendOptions>): Promise<number> {
    return this.#send('all', [''], event, data, options);
  }

  async sendByUserId<K extends EventName<Events>>(
    userIds: Key | readonly Key[],
    event: K,
    ...[data, options]: SendArgs<Events[K], SendOptions>
  ): Promise<number> {
    return this.#send('user', keysOf(userIds, 'userIds'), event, data, options);
  }

  async sendByAccessToken<K extends EventName<Events>>(
    tokens: string | readonly string[],
    event: K,
    ...[data, options]: SendArgs<Events[K], SendOptions>
  ): Promise<number> {
    return this.#send('token', keysOf(tokens, 'accessTokens'), event, data, options);
  }

  async sendByTenantId<K extends EventName<Events>>(
    tenantIds: Key | readonly Key[],
    event: K,
    ...[data, options]: SendArgs<Events[K], SendOptions>
  ): Promise<number> {
    return this.#send('tenant', keysOf(tenantIds, 'tenantIds'), event, data, options);
  }

  /** Sends to the members of channels: their fixed `channel`, or joined at runtime, on any node. */
  async sendByChannel<K extends EventName<Events>>(
    channels: string | readonly string[],
    event: K,
    ...[data, options]: SendArgs<Events[K], SendOptions>
  ): Promise<number> {
    return this.#send('channel', keysOf(channels, 'channels'), event, data, options);
  }

  /** Sends to connections by id. Resolves to the number written (unknown or closed ids count 0). */
  async sendByConnectionId<K extends EventName<Events>>(
    ids: string | readonly string[],
    event: K,
    ...[data, options]: SendArgs<Events[K], SendOptions>
  ): Promise<number> {
    return this.#send('connection', keysOf(ids, 'connectionIds'), event, data, options);
  }

  /**
   * Writes locally (one encoded Buffer for every recipient), then, when clustered, has the
   * peers do the same; only connection ids not found here are asked of the peers.
   */
  async #send(kind: SendTargetKind, keys: string[], event: string, data: unknown, options: SendOptions | undefined): Promise<number> {
    if (typeof event !== 'string' || event === '') throw new TypeError('event must be a non-empty string');
    const listening = options?.listening === true;
    // A send before the node listens would reach this node only and return a count that
    // looks final: it waits for the start instead, and fails with it.
    if (!this.#started) await this.#settled;
    // One id per send (not per recipient), kept in the recovery window; not for connection ids,
    // whose streams cannot come back as themselves.
    const window = kind === 'connection' ? undefined : this.#window;
    const at = window?.nextId();
    const frame = at === undefined ? encodeFrame({ event, data }) : encodeFrameWithOwnId({ event, data, id: at.id });
    const here = this.#local.deliver(kind, keys, frame, event, listening);
    if (at !== undefined) window!.record(at, kind, keys, event, listening, frame);
    const itemFor = (remote: string[]): SendItem => {
      const item: SendItem = { kind, keys: remote, event, data: serializeData(data), listening };
      if (at !== undefined) item.wid = at.id;
      return item;
    };
    if (options?.count === false) {
      // Count-free: the peers are told one-way; the answer is this node's count, at once.
      const remoteKeys = this.#remoteKeys(kind, keys);
      if (remoteKeys.length > 0) this.#cluster!.sendUncounted(itemFor(remoteKeys));
      return here;
    }
    return this.#hereThenPeers(kind, keys, here, (cluster, remote) => cluster.send(itemFor(remote)));
  }

  // ---- queries -------------------------------------------------------------------------
  // Each answers for the whole cluster when clustered: local first, then merged with the
  // peers'. A peer that fails, or is known but down, is left out and reported through
  // `peer-error`; `queryDetailed` says so with `partial`.

  async isOnline(userId: Key): Promise<boolean> {
    const key = keyOf(userId);
    if (key === undefined) return false;
    if (this.#local.query('isOnline', [key])) return true;
    return (await this.queryDetailed('isOnline', [key])).value;
  }

  /** The user object of one of this user's connections. */
  async getUser(userId: Key): Promise<SseUser | undefined> {
    const key = keyOf(userId);
    if (key === undefined) return undefined;
    return this.#local.query('user', [key]) ?? (await this.queryDetailed('user', [key])).value ?? undefined;
  }

  /** Online users, one entry per user id (anonymous connections are not users). */
  async getUsers(): Promise<SseUser[]> {
    return (await this.queryDetailed('users', [])).value;
  }

  async getUserIds(): Promise<string[]> {
    return (await this.queryDetailed('userIds', [])).value;
  }

  async getAccessTokens(): Promise<string[]> {
    return (await this.queryDetailed('accessTokens', [])).value;
  }

  async getTenantIds(): Promise<string[]> {
    return (await this.queryDetailed('tenantIds', [])).value;
  }

  async getChannels(): Promise<string[]> {
    return (await this.queryDetailed('channels', [])).value;
  }

  /** Distinct online user ids. */
  async getUserCount(): Promise<number> {
    return (await this.getUserIds()).length;
  }

  async getAccessTokenCount(): Promise<number> {
    return (await this.getAccessTokens()).length;
  }

  async getConnectionCount(): Promise<number> {
    return (await this.queryDetailed('connectionCount', [])).value;
  }

  /** Ids of the live connections (the Java `getConnectionIds()`), cluster-wide. */
  async getConnectionIds(): Promise<string[]> {
    return (await this.queryDetailed('connectionIds', [])).value;
  }

  /** Users with a connection listening to `event`, optionally within one tenant. */
  async getUsersListening(event: string, tenantId?: Key): Promise<SseUser[]> {
    const ids = new Set(await this.getUserIdsListening(event, tenantId));
    return (await this.getUsers()).filter((u) => ids.has(String(keyOf(u.id))));
  }

  async getUserIdsListening(event: string, tenantId?: Key): Promise<string[]> {
    return (await this.queryDetailed('userIdsListening', [event, keyOf(tenantId) ?? null])).value;
  }

  /** Snapshots of the connections that match every field of `filter`. */
  async getConnections(filter: ConnectionFilter = {}): Promise<ConnectionInfo[]> {
    return (await this.queryDetailed('connections', [normalizeFilter(filter)])).value;
  }

  async getConnectionById(id: string): Promise<ConnectionInfo | undefined> {
    if (typeof id !== 'string') return undefined;
    const local = this.#local.get(id);
    if (local !== undefined) return local.toInfo();
    return (await this.queryDetailed('connectionById', [id])).value ?? undefined;
  }

  /**
   * Runs a query on this node and every peer and merges the answers. `partial` is true
   * when a peer's part is missing: it did not answer in time, or it is known but down.
   */
  async queryDetailed<N extends QueryName>(name: N, ...rest: ArgsParam<N>): Promise<DetailedAnswer<QueryAnswer<N>>> {
    return this.queryWithin(name, (rest[0] ?? []) as QueryArgs<N>, {});
  }

  /**
   * @internal For the admin endpoints.
   * {@link Hub.queryDetailed} with per-call limits (the admin listings' `cluster` and
   * `timeout` parameters): `cluster: false` answers from this node only, `timeoutMs` is the
   * longest wait for one peer instead of the `cluster.timeoutMs` option.
   */
  async queryWithin<N extends QueryName>(
    name: N,
    args: QueryArgs<N>,
    options: { cluster?: boolean; timeoutMs?: number },
  ): Promise<DetailedAnswer<QueryAnswer<N>>> {
    if (!this.#started && options.cluster !== false) await this.#settled;
    const local = this.#local.query(name, args);
    if (this.#cluster === undefined || options.cluster === false) return { value: local, partial: false, failed: [] };
    const remote = await this.#cluster.query(name, args, options.timeoutMs);
    return { value: mergeQuery(name, [local, ...remote.values]), partial: remote.failed.length > 0, failed: remote.failed };
  }

  /** Answers a query from this node's connections only. */
  localQuery<N extends QueryName>(name: N, ...rest: ArgsParam<N>): QueryAnswer<N> {
    return this.#local.query(name, (rest[0] ?? []) as QueryArgs<N>);
  }

  // ---- control -------------------------------------------------------------------------

  /**
   * Closes every connection of these users with `reason: 'kick'`, after recording
   * `duration` / `sessionDuration` when given. Resolves to the count closed (cluster-wide).
   */
  async disconnectByUserId(userIds: Key | readonly Key[], options?: DisconnectOptions): Promise<number> {
    return this.#kick('user', keysOf(userIds, 'userIds'), options);
  }

  async disconnectByAccessToken(tokens: string | readonly string[], options?: DisconnectOptions): Promise<number> {
    return this.#kick('token', keysOf(tokens, 'accessTokens'), options);
  }

  async disconnectByConnectionId(ids: string | readonly string[], options?: DisconnectOptions): Promise<number> {
    return this.#kick('connection', keysOf(ids, 'connectionIds'), options);
  }

  #kick(kind: SendTargetKind, keys: string[], options: DisconnectOptions | undefined): Promise<number> {
    let record: DurationRecord | undefined;
    for (const field of ['duration', 'sessionDuration'] as const) {
      const value = options?.[field];
      if (value === undefined) continue;
      assertSeconds(value, field);
      (record ??= {})[field] = value;
    }
    return this.#disconnect(kind, keys, options?.reconnect ?? false, 'kick', record);
  }

  /** Same as {@link Hub.disconnectByConnectionId}; kept for the Java API's plural name. */
  async disconnectByConnectionIds(ids: readonly string[], options?: DisconnectOptions): Promise<number> {
    return this.disconnectByConnectionId(ids, options);
  }

  /**
   * @internal For the `ack.do` endpoint.
   * Acknowledges durable messages for a connection's user and token:
   * entries of messages this node owns are removed here, the others at their owners.
   * Resolves to the number of pending entries removed.
   */
  async ack(conn: Pick<ConnectionHandle, 'id' | 'userId' | 'accessToken'>, messageIds: readonly string[]): Promise<number> {
    return this.#qos === undefined ? 0 : this.#qos.ack(conn, messageIds);
  }

  /**
   * @internal For the `disconnect.do` endpoint.
   * Ends a connection the client says it left, wherever it is. What the
   * client measured is recorded before `disconnect` fires (on the node holding it). Resolves
   * to the count closed (0: no such connection), partial when a peer did not answer.
   * `reach` (the Java parameters `cluster`, `timeout`): `cluster: false` looks on this node
   * only; `timeoutMs` is the longest wait for one peer instead of `cluster.timeoutMs`.
   */
  async clientLeft(
    connectionId: string,
    report: ClientLeaving = {},
    reach: { cluster?: boolean; timeoutMs?: number } = {},
  ): Promise<DetailedAnswer<number>> {
    const conn = this.#local.get(connectionId);
    if (conn === undefined) {
      if (this.#cluster === undefined || reach.cluster === false) return { value: 0, partial: false, failed: [] };
      const remote = await this.#cluster.disconnect('connection', [connectionId], true, 'client', undefined, reach.timeoutMs);
      return { value: remote.values.reduce((a, b) => a + b, 0), partial: remote.failed.length > 0, failed: remote.failed };
    }
    conn.recordDurations(report);
    if (report.reason !== undefined) conn.attributes.set('disconnectReason', report.reason);
    conn.close('client');
    return { value: 1, partial: false, failed: [] };
  }

  async #disconnect(kind: SendTargetKind, keys: string[], reconnect: boolean, reason: DisconnectReason, record?: DurationRecord): Promise<number> {
    const here = this.#local.disconnect(kind, keys, reconnect, reason, record);
    return this.#hereThenPeers(kind, keys, here, (cluster, remote) => cluster.disconnect(kind, remote, reconnect, reason, record));
  }

  // ---- online time ---------------------------------------------------------------------

  /**
   * Tells these users' clients their accumulated online time (`sse-set-duration`). A user
   * who is offline everywhere gets it on their next connect, to whichever node (every node
   * keeps it until one gives it). Resolves to the connections written now.
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
    const counts = new Map(keys.map((key) => [key, this.#local.setDuration(kind, [key], seconds)]));
    const remoteKeys = this.#remoteKeys(kind, keys);
    // One round trip for all keys; each peer answers a count per key.
    if (remoteKeys.length > 0) addPerKey(counts, remoteKeys, await this.#cluster!.duration(kind, remoteKeys, seconds));
    let total = 0;
    const offline: string[] = [];
    for (const [key, count] of counts) {
      if (count === 0 && kind !== 'connection') {
        this.#local.keepDuration(kind, key, seconds);
        offline.push(key);
      }
      total += count;
    }
    if (offline.length === 0 || kind === 'connection' || this.#cluster === undefined) return total;
    // Kept on every node, as the Java library does: the user may come back to any of them.
    // A peer where the user connected meanwhile writes it instead: then nobody keeps it.
    const written = addPerKey(new Map(offline.map((key) => [key, 0])), offline, await this.#cluster.keepDuration(kind, offline, seconds));
    const given = new Set<string>();
    for (const [key, n] of written) {
      total += n;
      if (n > 0) given.add(key);
    }
    if (given.size > 0) {
      for (const key of given) this.#local.forgetDuration(kind, key);
      await this.#cluster.keepDuration(kind, [...given], null);
    }
    return total;
  }

  /**
   * Clears these users' online time (the Java `clearDurationByUserId`): the `sessionDuration`
   * of their live connections and any value kept for their next connect, on every node. Tells
   * the clients nothing. Resolves to the connections that had a value (cluster-wide).
   */
  async clearDurationByUserId(userIds: Key | readonly Key[]): Promise<number> {
    return this.#clearDuration('user', keysOf(userIds, 'userIds'));
  }

  async clearDurationByAccessToken(tokens: string | readonly string[]): Promise<number> {
    return this.#clearDuration('token', keysOf(tokens, 'accessTokens'));
  }

  async clearDurationByConnectionId(ids: string | readonly string[]): Promise<number> {
    return this.#clearDuration('connection', keysOf(ids, 'connectionIds'));
  }

  async #clearDuration(kind: 'user' | 'token' | 'connection', keys: string[]): Promise<number> {
    const here = this.#local.clearDuration(kind, keys);
    // Values kept for offline keys may wait on any node: users and tokens go to every peer.
    return this.#hereThenPeers(kind, keys, here, (cluster, remote) => cluster.clearDuration(kind, remote));
  }

  // ---- one-shot listeners ----------------------------------------------------------------

  /**
   * Calls `listener` once, at the next connect of this user (`'user'`), access token
   * (`'token'`) or channel (`'channel'`) on this node, after the `connect` event (the Java
   * `addConnectListener(userId, consumer)`). Like the events, it sees this node's connections
   * only. With `options.channel`, only a connection in that channel (its fixed `channel`, or
   * one joined at connect) takes it: a connection of the same user or token elsewhere leaves it
   * waiting (the Java `addConnectListener(accessToken, channel, consumer)`). Answers a function
   * that removes it if it has not run. Bounded: at most 10,000 connect listeners wait at once
   * per hub; one more throws a RangeError. What it throws goes to the `error` event. With
   * `options.existing`, the connections already open are served first (the Java behaviour).
   */
  addConnectListener(kind: OnceListenerKind, key: Key, listener: (connection: Connection) => void, options?: ConnectListenerOptions): () => void {
    const args = onceArgs(kind, key, listener, options);
    const existing = options?.existing;
    if (existing !== undefined && typeof existing !== 'boolean') throw new TypeError('options.existing must be a boolean');
    if (existing === true) {
      const channel = args[3];
      const open = [...this.#local.targets(args[0], [args[1]])].filter((c) => !c.closed && (channel === undefined || c.memberOf(channel)));
      if (open.length > 0) {
        for (const conn of open) {
          try {
            listener(conn);
          } catch (err) {
            this.reportError(err);
          }
        }
        return () => undefined;
      }
    }
    return this.#local.onceConnect(...args);
  }

  /**
   * Calls `listener` once, when the next connection of this user, access token or channel on
   * this node ends, after the `disconnect` event (the Java `addDisConnectListener`). Same
   * bound (10,000 waiting, apart from the connect listeners) and removal as
   * {@link Hub.addConnectListener}.
   */
  addDisconnectListener(
    kind: OnceListenerKind,
    key: Key,
    listener: (connection: Connection, reason: CloseReason) => void,
    options?: OnceListenerOptions,
  ): () => void {
    return this.#local.onceDisconnect(...onceArgs(kind, key, listener, options));
  }

  /**
   * "Here, then at the peers, sum": `here` is this node's count; when the target reaches
   * peers ({@link Hub.#remoteKeys}), `atPeers` asks them for the keys left, and each peer's
   * count is added. A peer that failed is left out (reported as `peer-error`); an answer that
   * is not a number counts 0.
   */
  async #hereThenPeers(
    kind: SendTargetKind,
    keys: string[],
    here: number,
    atPeers: (cluster: Cluster, remoteKeys: string[]) => Promise<FanOut<number>>,
  ): Promise<number> {
    const remoteKeys = this.#remoteKeys(kind, keys);
    if (remoteKeys.length === 0) return here;
    let count = here;
    for (const n of (await atPeers(this.#cluster!, remoteKeys)).values) count += Number(n) || 0;
    return count;
  }

  /** The keys peers must be asked about: none without peers; all, except connection ids held here. */
  #remoteKeys(kind: SendTargetKind, keys: string[]): string[] {
    if (this.#cluster === undefined || keys.length === 0) return [];
    return kind === 'connection' ? keys.filter((id) => this.#local.get(id) === undefined) : keys;
  }

  // ---- channels and presence -------------------------------------------------------------

  /**
   * Joins connections to channels on the server's decision (no `authorizeChannel`):
   * `{connectionId}`, every connection of `{userId}` or of `{accessToken}`, wherever they are
   * in the cluster. Each connection changed gets the event `sse-channels` with data
   * `{channels}` (its runtime channels), so that the page restores them after a reconnect
   * (through `authorizeChannel` then: allow there what the server joins). A connection the
   * join would take past `maxChannelsPerConnection` is left as it is. Resolves to the count of
   * connections changed (cluster-wide).
   */
  async joinChannel(target: ChannelTarget, channels: string | readonly string[]): Promise<number> {
    return this.#changeChannels(target, channels, true);
  }

  /** Leaves channels joined at runtime (the fixed `channel` stays); the same targets and `sse-channels` as {@link Hub.joinChannel}. */
  async leaveChannel(target: ChannelTarget, channels: string | readonly string[]): Promise<number> {
    return this.#changeChannels(target, channels, false);
  }

  async #changeChannels(target: ChannelTarget, channels: string | readonly string[], join: boolean): Promise<number> {
    const [kind, keys] = targetOf(target);
    const names = channelNamesOf(channels);
    const here = this.#local.changeChannelsOf(kind, keys, names, join);
    if (names.length === 0) return here;
    return this.#hereThenPeers(kind, keys, here, (cluster, remote) => cluster.changeChannels(kind, remote, names, join));
  }

  /**
   * @internal For the `join.do` / `leave.do` endpoints.
   * A page's own join or leave (the HTTP layer has run
   * `authorizeChannel`), wherever the connection is held. All or nothing: resolves to its
   * runtime channels after the change; rejects with `ERR_SSE_TOO_MANY_CHANNELS` past the cap,
   * `ERR_SSE_UNKNOWN_CONNECTION` when it is gone. The page is answered, not sent `sse-channels`.
   */
  async changeConnectionChannels(connectionId: string, channels: readonly string[], join: boolean): Promise<string[]> {
    const names = channelNamesOf(channels);
    const local = this.#local.get(connectionId);
    if (local !== undefined) return this.#local.changeChannels(local, names, join);
    const current = await this.#cluster?.changeConnectionChannels(connectionId, names, join);
    if (current === undefined) throw new SseUnknownConnectionError(connectionId);
    return current;
  }

  /** The runtime channels of a connection wherever it is held, or undefined when it is gone. */
  async channelsOf(connectionId: string): Promise<string[] | undefined> {
    if (typeof connectionId !== 'string') return undefined;
    const local = this.#local.get(connectionId);
    if (local !== undefined) return local.channels;
    if (this.#cluster === undefined) return undefined;
    return (await this.queryDetailed('channelsOf', [connectionId])).value ?? undefined;
  }

  /**
   * Who is in a channel, cluster-wide: users (by id, with their count of member connections)
   * sorted by user id, at most `limit` (default `presence.maxListed`), and `total`, the count
   * of distinct users. Anonymous connections are members but not listed users.
   */
  async presence(channel: string, options: { limit?: number } = {}): Promise<ChannelPresence> {
    const [name] = channelNamesOf(channel);
    const limit = options.limit ?? this.presenceOptions.maxListed;
    if (typeof limit !== 'number' || !(limit >= 0)) throw new TypeError(`limit must be a non-negative number, got ${String(limit)}`);
    const entries = (await this.queryDetailed('presence', [name!])).value;
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return {
      channel: name!,
      users: entries.slice(0, limit).map(([userId, connections]) => ({ userId, connections })),
      total: entries.length,
    };
  }

  #presenceWanted(channel: string): boolean {
    return this.listenerCount('presence-join') > 0 || this.listenerCount('presence-leave') > 0 || this.#notifies(channel);
  }

  #notifies(channel: string): boolean {
    try {
      return this.presenceOptions.notifyMembers(channel) === true;
    } catch (err) {
      this.reportError(err);
      return false;
    }
  }

  /** A decided join or leave: the hub event, and `sse-presence` to the channel's members when it is opted in. */
  #presenceNews(channel: string, userId: string, action: 'join' | 'leave'): void {
    this.#emitSafe(action === 'join' ? 'presence-join' : 'presence-leave', { channel, userId });
    if (!this.#notifies(channel) || this.#local.closed) return;
    const notice: PresenceNotice = { channel, userId, action };
    this.#send('channel', [channel], 'sse-presence', notice, undefined).catch((err: unknown) => this.reportError(err));
  }

  // ---- shutdown ------------------------------------------------------------------------

  /**
   * Graceful shutdown: refuses new streams; commits and closes the durable store; tells every
   * client `connect-close {reason: 'shutdown', reconnect: true}` with a random `retry:` (so
   * that they come back spread over `reconnectTimeMs`, to another node if there is one); waits
   * up to `drainMs` for those last frames to be written; leaves the cluster (mDNS goodbye).
   * A send accepted before `close` was called is committed, never lost; one made after it is
   * refused (`ERR_SSE_CLOSED`). An acknowledgement that arrives during the goodbye is not
   * recorded: that message is delivered again on the next connection (at least once).
   */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.#local.closed) return;
    this.#local.refuse();
    // The store goes first: a restarted process waits for the SQLite file's lock before it
    // listens, and saying goodbye to many streams takes long (15,000: ~1 s, mostly the kernel's
    // writes). Released first, the file is the new process's while this one says goodbye, and
    // clients that come back early find it listening.
    await this.#qos?.close();
    await this.#local.close(options.drainMs ?? 2000);
    // On a LAN the window is this node's memory: handed to the peers, pages that resume after it left are still told all is there.
    await this.#windowCluster?.handoff();
    await this.#cluster?.close();
  }

  #emitSafe<K extends Exclude<keyof HubEvents, 'error'>>(event: K, ...args: HubEvents[K]): void {
    // Every stream opened and closed passes here; most events have no listener at all.
    if (this.listenerCount(event) === 0) return;
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (err) {
      this.reportError(err);
    }
  }

  /** @internal Routes an error to the hub's `error` listeners (the plugin's forward it to Koa). */
  reportError(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else console.error(err);
  }
}

/** A hub without Koa: to push from a process that serves streams by other means, or none. */
export function createHub<Events extends EventMap = Record<string, unknown>>(options: HubOptions = {}): Hub<Events> {
  checkHubOptions(options);
  return new Hub<Events>(options);
}

/** The kind and key of a server-side join target; a TypeError for anything else. */
/**
 * Adds each peer's per-key counts (in the order of `keys`) to `counts`; answers `counts`.
 * A missing or non-number count is 0.
 */
function addPerKey(counts: Map<string, number>, keys: readonly string[], answers: FanOut<number[]>): Map<string, number> {
  for (const perKey of answers.values) {
    keys.forEach((key, i) => counts.set(key, (counts.get(key) ?? 0) + (Number(Array.isArray(perKey) ? perKey[i] : 0) || 0)));
  }
  return counts;
}

function targetOf(target: ChannelTarget): ['connection' | 'user' | 'token', string[]] {
  if (target === null || typeof target !== 'object') throw new TypeError('target must be {connectionId}, {userId} or {accessToken}');
  const t = target as { connectionId?: unknown; userId?: unknown; accessToken?: unknown };
  const given = [t.connectionId, t.userId, t.accessToken].filter((v) => v !== undefined).length;
  if (given !== 1) throw new TypeError('target must have exactly one of connectionId, userId, accessToken');
  if (t.connectionId !== undefined) {
    if (typeof t.connectionId !== 'string' || t.connectionId === '') throw new TypeError('target.connectionId must be a non-empty string');
    return ['connection', [t.connectionId]];
  }
  if (t.userId !== undefined) return ['user', keysOf(t.userId as Key, 'userId')];
  if (typeof t.accessToken !== 'string' || t.accessToken === '') throw new TypeError('target.accessToken must be a non-empty string');
  return ['token', [t.accessToken]];
}

/** A filter that crosses the wire: keys as strings (bigint does not survive JSON). */
function normalizeFilter(filter: ConnectionFilter): ConnectionFilter {
  const out: ConnectionFilter = {};
  for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = keyOf(v);
  return out;
}

function assertSeconds(seconds: number, what = 'seconds'): void {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError(`${what} must be a non-negative number, got ${String(seconds)}`);
  }
}

/** Checks the arguments of a one-shot listener; the key as a string. */
function onceArgs<F>(
  kind: OnceListenerKind,
  key: Key,
  listener: F,
  options: OnceListenerOptions | undefined,
): [OnceListenerKind, string, F, string | undefined] {
  if (kind !== 'user' && kind !== 'token' && kind !== 'channel')
    throw new TypeError(`kind must be 'user', 'token' or 'channel', got ${String(kind)}`);
  const k = keyOf(key);
  if (k === undefined) throw new TypeError('key is required');
  if (typeof listener !== 'function') throw new TypeError('listener must be a function');
  const channel = options?.channel;
  if (channel !== undefined && (typeof channel !== 'string' || channel === '')) throw new TypeError('options.channel must be a non-empty string');
  return [kind, k, listener, channel];
}
