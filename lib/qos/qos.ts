import { EventEmitter } from 'node:events';
import { SseClosedError, SsePayloadTooLargeError, SseQosDisabledError } from '../core/errors.js';
import { encodeFrame, serializeData } from '../core/frame.js';
import { positive } from '../core/option-checks.js';
import type { TargetKind, TargetRef } from '../core/targets.js';
import { keysOf, type Key } from '../core/user.js';
import type { Connection } from '../local/connection.js';
import type { ListenersChange, LocalNode } from '../local/local-node.js';
import { ackedByWrite } from './ack-policy.js';
import { DeliveryWaits } from './delivery-waits.js';
import { idAt, isMessageId, MessageIdGenerator } from './message-id.js';
import { PendingCounts } from './pending-counts.js';
import type { AckedBy, AckItem, DurableMessage, DurableSend, PendingRequest, QosCluster } from './qos-cluster.js';
import {
  QUEUE_KINDS,
  type NewMessage,
  type QosStore,
  type RemovedTarget,
  type StoredEntry,
  type StoreFilter,
  type StoredMessage,
} from './qos-store.js';
import { RedisQosStore } from './redis-store.js';
import { ReplayPhase } from './replay-phase.js';
import { writeMessages } from './replay-writer.js';
import { SqliteQosStore } from './sqlite-store.js';
import { logRefsOf, queueRefsOf } from './target-refs.js';
import type { QosEvents, QosSendOptions, QosSendResult, QosStatus } from './qos-api.js';
import { resolveQosOptions, type QosOptions } from './qos-options.js';

export type { QosOptions } from './qos-options.js';
export type { QosAckedEvent, QosEvents, QosExpiredEvent, QosSendOptions, QosSendResult, QosStatus } from './qos-api.js';

const REPLAY_PAGE = 1000;
const EXPIRE_PAGE = 5000;

/**
 * Per-connection replay state, kept off the Connection object: which replay a live durable
 * message is left to (see {@link ReplayPhase}). Store reads are async (Redis), and a peer's
 * answer travels: a send may commit after a read and reach the connection before the replay ends.
 */
interface ReplayState {
  /** This node's store: queue messages (user, token). Nodes sharing a Redis store all own every message. */
  queue?: ReplayPhase;
  /** This node's store: retained-log messages, while a `Last-Event-ID` resume runs. */
  log?: ReplayPhase;
  /** Messages owned by peers, pulled from them. */
  peers?: ReplayPhase;
}

/**
 * Durable at-least-once delivery for one hub (`hub.qos`). A send is committed to its store
 * (SQLite, or Redis shared by the nodes) before its promise resolves, then written to the
 * live targets. Users and tokens are
 * queues (pending until acknowledged); tenants, channels and "all" are a retained log that
 * a connection resuming with `Last-Event-ID` replays.
 *
 * It sits on the local node (whose events it listens to) and, when clustered, on the
 * {@link QosCluster} interface: messages owned by peers are pulled from them when a
 * connection opens and acknowledged back to them. A node of a cluster without a store of its
 * own still runs this layer for the messages its peers own.
 */
export class Qos extends EventEmitter<QosEvents> {
  readonly #local: LocalNode;
  readonly #cluster: QosCluster | undefined;
  readonly #store: QosStore | undefined;
  /** Ids of sends without targets (never stored). */
  readonly #ids: MessageIdGenerator | undefined;
  /** Ends every message id of this node's store (see {@link QosStore.tag}); undefined without a store. Nodes sharing a Redis store share it. */
  readonly tag: string | undefined;
  readonly #ttlMs: number;
  /** A connection without `Last-Event-ID` reads the logs stored in the last this-many ms (0: none). */
  readonly #newConnectionLogMs: number;
  readonly #maxBytes: number;
  readonly #counts: PendingCounts;
  /** Set until the counts are first loaded from the store: the SQLite caps wait for it. */
  #countsLoading: Promise<void> | undefined;
  readonly #replays = new WeakMap<Connection, ReplayState>();
  /** Sends whose promise waits for delivery (`waitForDelivery`). */
  readonly #waits = new DeliveryWaits();
  readonly #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /**
   * @internal Created by the hub: with `options` (its `qos` option) it owns a store; with
   * `cluster` it also serves the messages peers own.
   */
  /** @param nameGiven whether the hub's name is the app's own choice (a Redis store needs one: see `qos.redisPrefix`) */
  constructor(local: LocalNode, options: QosOptions | undefined, cluster: QosCluster | undefined, nameGiven = true) {
    super();
    this.#local = local;
    this.#cluster = cluster;
    if (options === undefined) {
      this.#ttlMs = 0;
      this.#newConnectionLogMs = 0;
      this.#maxBytes = 0;
      this.#counts = new PendingCounts(0, 0);
    } else {
      const o = resolveQosOptions(options, local.options.name, nameGiven);
      this.#ttlMs = o.ttlMs;
      this.#newConnectionLogMs = o.newConnectionLogMs;
      this.#maxBytes = o.maxMessageBytes;
      const s = o.store;
      this.#store =
        s.type === 'own'
          ? s.store
          : s.type === 'sqlite'
            ? new SqliteQosStore(s.file, { synchronous: s.synchronous, lockTimeoutMs: s.lockTimeoutMs, integrityCheck: s.integrityCheck })
            : new RedisQosStore(s.redis, {
                prefix: s.prefix,
                commandTimeoutMs: s.commandTimeoutMs,
                maxPendingPerTarget: o.maxPendingPerTarget,
                maxMessages: o.maxMessages,
              });
      this.tag = this.#store.tag;
      this.#ids = new MessageIdGenerator(this.tag);
      this.#counts = new PendingCounts(o.maxPendingPerTarget, o.maxMessages);
      if (this.#store.onReady !== undefined) {
        // Loaded once Redis answers, and again after each reconnect: other nodes went on meanwhile.
        this.#store.onReady(() => void this.#loadCounts());
      } else {
        this.#countsLoading = this.#loadCounts().finally(() => (this.#countsLoading = undefined));
      }
      this.#timer = setInterval(() => void this.#tick(), o.expiryIntervalMs);
      this.#timer.unref();
    }
    local.on('connect', (conn) => this.#onOpen(conn));
    local.on('listeners-change', (change) => this.#onListenersAdded(change));
  }

  /** Whether this node has a durable store of its own (the `qos` option). */
  get hasStore(): boolean {
    return this.#store !== undefined;
  }

  /**
   * (Re)loads the pending counts from the store. A shared store's counts change on other
   * nodes too: they are reloaded at every expiry tick, so `pendingCount` lags by at most that.
   */
  async #loadCounts(): Promise<void> {
    try {
      const { queues, total } = await this.#store!.counts();
      this.#counts.reset(queues, total);
    } catch (err) {
      this.emit('error', err);
    }
  }

  async #tick(): Promise<void> {
    await this.expireNow();
    if (this.#store?.shared === true && !this.#closed) await this.#loadCounts();
  }

  #requireStore(): QosStore {
    if (this.#store === undefined) throw new SseQosDisabledError();
    if (this.#closed) throw new SseClosedError('The durable queue');
    return this.#store;
  }

  // ---- sending -----------------------------------------------------------------------

  sendAll(event: string, data?: unknown, options?: QosSendOptions): Promise<QosSendResult> {
    return this.#send('all', [''], event, data, options);
  }

  sendByUserId(userIds: Key | readonly Key[], event: string, data?: unknown, options?: QosSendOptions): Promise<QosSendResult> {
    return this.#send('user', keysOf(userIds, 'userIds'), event, data, options);
  }

  sendByAccessToken(tokens: string | readonly string[], event: string, data?: unknown, options?: QosSendOptions): Promise<QosSendResult> {
    return this.#send('token', keysOf(tokens, 'accessTokens'), event, data, options);
  }

  sendByTenantId(tenantIds: Key | readonly Key[], event: string, data?: unknown, options?: QosSendOptions): Promise<QosSendResult> {
    return this.#send('tenant', keysOf(tenantIds, 'tenantIds'), event, data, options);
  }

  sendByChannel(channels: string | readonly string[], event: string, data?: unknown, options?: QosSendOptions): Promise<QosSendResult> {
    return this.#send('channel', keysOf(channels, 'channels'), event, data, options);
  }

  async #send(kind: TargetKind, keys: string[], event: string, data: unknown, options: QosSendOptions | undefined): Promise<QosSendResult> {
    const store = this.#requireStore();
    if (typeof event !== 'string' || event === '') throw new TypeError('event must be a non-empty string');
    const ttlMs = positive(options?.ttlMs, 'ttlMs', this.#ttlMs);
    const waitMs = waitForDeliveryOf(options?.waitForDelivery, kind, ttlMs);
    const text = serializeData(data);
    if (Buffer.byteLength(text) > this.#maxBytes) throw new SsePayloadTooLargeError('Durable message', this.#maxBytes);
    const now = Date.now();
    const fresh: NewMessage = { kind, event, data: text, listening: options?.listening === true, createdAt: now, expiresAt: now + ttlMs };
    if (keys.length === 0) return { messageId: this.#ids!.next(now), delivered: 0, ...(waitMs === undefined ? {} : { acknowledged: true }) };
    let message: StoredMessage;
    if (store.shared) {
      // The store checks the caps with the insert, for every node sharing it.
      message = await store.insert(fresh, keys);
      this.#counts.added(kind, keys);
    } else {
      if (this.#countsLoading !== undefined) await this.#countsLoading;
      this.#counts.reserve(kind, keys);
      try {
        message = await store.insert(fresh, keys);
      } catch (err) {
        this.#counts.release(kind, keys);
        throw err;
      }
    }
    // Waiting before any delivery: an ack can then never come before the wait.
    const id = message.id;
    const waiting =
      waitMs === undefined ? undefined : this.#waits.wait(id, waitMs, store.shared ? async () => (await store.get(id)) === undefined : undefined);
    let delivered = this.#deliver(message, keys);
    if (this.#cluster !== undefined) {
      // Peers write it to their connections; their acks come back to this node, the owner.
      delivered += await this.#cluster.forwardSend({ id: message.id, kind, keys, event, data: text, listening: message.listening });
    }
    if (waiting === undefined) return { messageId: message.id, delivered };
    return { messageId: message.id, delivered, acknowledged: await waiting };
  }

  /**
   * The one way a live durable message reaches the connections here, whatever brought it (a
   * send on this node, or one a peer forwarded, over any transport): a connection whose
   * replay of the message's owner runs, or read it, leaves it to that replay; the others get
   * it now, and a client that cannot ack is done with it once written. Returns the count reached.
   */
  #deliver(message: DurableMessage, keys: string[]): number {
    const frame = encodeFrame({ event: message.event, data: message.data, id: message.id });
    return this.#local.deliver(message.kind, keys, frame, message.event, message.listening, {
      leave: (conn) => this.#leftToReplay(conn, message),
      written: (conn) => this.#ackWritten(conn, [message]),
    });
  }

  #leftToReplay(conn: Connection, message: DurableMessage): boolean {
    const state = this.#replays.get(conn);
    if (state === undefined) return false;
    const own = this.tag !== undefined && message.id.endsWith(this.tag);
    const phase = !own ? state.peers : QUEUE_KINDS.has(message.kind) ? state.queue : state.log;
    return phase?.takes(message) === true;
  }

  /**
   * @internal A peer forwarded a durable send it owns (or, sharing a Redis store, one it
   * sent): delivered here like a send of this node. Returns the count reached.
   */
  deliverForwarded(send: DurableSend): number {
    return this.#deliver(send, send.keys);
  }

  // ---- acknowledgement ---------------------------------------------------------------

  /**
   * Acknowledges messages for this connection's user and token. Ids of other users'
   * messages, unknown or already acknowledged ids do nothing. Resolves to the number of
   * pending entries removed.
   */
  async ack(conn: { id: string; userId?: string | undefined; accessToken?: string | undefined }, messageIds: readonly string[]): Promise<number> {
    const refs = queueRefsOf(conn);
    if (refs.length === 0) return 0;
    const items = messageIds.filter(isMessageId).map((messageId) => ({ messageId, targets: refs }));
    return this.#acknowledge(items, conn.id, 'ack');
  }

  /** Removes acknowledged entries: at this node's store for its own messages, at their owners for the rest. */
  async #acknowledge(items: AckItem[], connectionId: string, by: AckedBy): Promise<number> {
    if (items.length === 0) return 0;
    const tag = this.tag;
    const own = tag === undefined ? [] : items.filter((i) => i.messageId.endsWith(tag));
    const foreign = tag === undefined ? items : items.filter((i) => !i.messageId.endsWith(tag));
    const [local, remote] = await Promise.all([
      own.length > 0 && !this.#closed ? this.#store!.remove(own).then((removed) => this.#onRemoved(removed, connectionId, by)) : 0,
      foreign.length > 0 && this.#cluster !== undefined ? this.#cluster.forwardAcks(foreign, connectionId, by) : 0,
    ]);
    return local + remote;
  }

  /**
   * Messages were just written to `conn`: those it cannot acknowledge itself are done now
   * ({@link ackedByWrite}), here or at their owner. A failure leaves them pending (resent later).
   */
  #ackWritten(conn: Connection, messages: readonly DurableMessage[]): void {
    const items: AckItem[] = [];
    for (const m of messages) {
      const target = ackedByWrite(conn, m.kind);
      if (target !== undefined) items.push({ messageId: m.id, targets: [target] });
    }
    if (items.length === 0) return;
    this.#acknowledge(items, conn.id, 'write').catch((err: unknown) => this.emit('error', err));
  }

  #onRemoved(removed: RemovedTarget[], connectionId: string, by: AckedBy): number {
    for (const r of removed) {
      this.#counts.add(r.kind, r.key, -1);
      if (r.last) {
        this.#counts.removed();
        this.#waits.settle(r.messageId, true);
      }
      this.emit('qos-acked', {
        messageId: r.messageId,
        kind: r.kind as 'user' | 'token',
        key: r.key,
        connectionId,
        by,
        complete: r.last,
      });
    }
    return removed.length;
  }

  /** @internal A peer forwards acks of messages this node owns. */
  async ackForwarded(items: AckItem[], connectionId: string, by: AckedBy): Promise<number> {
    if (this.#store === undefined || this.#closed) return 0;
    const valid = items.filter((i) => isMessageId(i.messageId) && i.targets.every((t) => QUEUE_KINDS.has(t.kind)));
    if (valid.length === 0) return 0;
    return this.#onRemoved(await this.#store.remove(valid), connectionId, by);
  }

  /** @internal What a peer's connection should get from this node: pending queue messages, then the log after its resume point. */
  async pendingFor(request: PendingRequest, limit: number): Promise<DurableMessage[]> {
    if (this.#store === undefined || this.#closed) return [];
    const now = Date.now();
    const { refs, logRefs, lastEventId, events } = request;
    const rows = (
      await this.#store.messagesFor(
        refs.filter((r) => QUEUE_KINDS.has(r.kind)),
        '',
        limit,
        now,
        events,
      )
    ).messages;
    if (lastEventId !== undefined && isMessageId(lastEventId) && events === undefined) {
      rows.push(
        ...(
          await this.#store.messagesFor(
            logRefs.filter((r) => !QUEUE_KINDS.has(r.kind)),
            lastEventId,
            limit,
            now,
          )
        ).messages,
      );
    }
    return rows.map((m) => ({ id: m.id, kind: m.kind, event: m.event, data: m.data, listening: m.listening }));
  }

  // ---- replay ------------------------------------------------------------------------

  /** A stream opened: resend its user's and token's pending messages, then resume the log; the same from every peer. */
  #onOpen(conn: Connection): void {
    const resume = this.#resumePoint(conn);
    if (this.#store !== undefined) {
      const queue = new ReplayPhase();
      const log = resume === undefined ? undefined : new ReplayPhase();
      this.#replays.set(conn, log === undefined ? { queue } : { queue, log });
      void this.#replay(conn, queue, log, resume).catch((err: unknown) => this.#replayFailed(err));
    }
    this.#pullFromPeers(conn, undefined, undefined, resume);
  }

  /**
   * Where a connection that opened resumes the retained logs (tenant, channel, all): after its
   * `Last-Event-ID`; a new one (none) after the id of `newConnectionLogMs` ago, when set.
   */
  #resumePoint(conn: Connection): string | undefined {
    const lastEventId = conn.client.lastEventId;
    if (lastEventId !== undefined && isMessageId(lastEventId)) return lastEventId;
    if (this.#newConnectionLogMs === 0) return undefined;
    // Ids start with the ms clock: this one sorts before every message stored since then.
    return idAt(Date.now() - this.#newConnectionLogMs);
  }

  /** Listeners were added: listening-mode messages for them may now be deliverable, here and at peers. */
  #onListenersAdded({ connection: conn, added }: ListenersChange): void {
    if (added.length === 0 || conn.closed || queueRefsOf(conn).length === 0) return;
    if (this.#store !== undefined) {
      void this.#replayPages(conn, queueRefsOf(conn), '', added).catch((err: unknown) => this.#replayFailed(err));
    }
    this.#pullFromPeers(conn, added, undefined, undefined);
  }

  /**
   * @internal A peer with a store (re)joined: it may hold messages for the connections here
   * (they connected while it was away). Pull them from that peer only.
   */
  pullFrom(peerId: string): void {
    for (const conn of this.#local.connections()) {
      if (conn.userId !== undefined || conn.accessToken !== undefined) this.#pullFromPeers(conn, undefined, peerId, undefined);
    }
  }

  /** Asks the owners of durable messages what they hold for `conn`, and writes it through the one replay writer. */
  #pullFromPeers(conn: Connection, events: string[] | undefined, peerId: string | undefined, lastEventId: string | undefined): void {
    const cluster = this.#cluster;
    if (cluster === undefined) return;
    const refs = queueRefsOf(conn);
    const logRefs = lastEventId === undefined ? [] : logRefsOf(conn);
    if (refs.length === 0 && logRefs.length === 0) return;
    const request: PendingRequest = { refs, logRefs };
    if (lastEventId !== undefined) request.lastEventId = lastEventId;
    if (events !== undefined) request.events = events;
    // A pull of everything pending is a replay: live messages of its owners wait for it. One for
    // newly listened events reads only some messages, so it vouches for none.
    const phase = events === undefined ? this.#pullPhase(conn) : undefined;
    const pull = async (): Promise<void> => {
      try {
        const lists = await cluster.pullPending(request, peerId);
        if (phase !== undefined) for (const messages of lists) phase.pulled(messages);
        await Promise.all(lists.map((messages) => this.#write(conn, messages)));
      } finally {
        if (phase !== undefined) await this.#finish(conn, phase);
      }
    };
    void pull().catch((err: unknown) => this.emit('error', err));
  }

  /** The phase of a pull from the peers starting for `conn` (another run of it, when one went before: its marks stay true). */
  #pullPhase(conn: Connection): ReplayPhase {
    let state = this.#replays.get(conn);
    if (state === undefined) this.#replays.set(conn, (state = {}));
    if (state.peers === undefined) state.peers = new ReplayPhase();
    else state.peers.begin();
    return state.peers;
  }

  /** One run of a phase wrote what it read: writes what the phase held, oldest first, until it is over. */
  async #finish(conn: Connection, phase: ReplayPhase): Promise<void> {
    for (let held = phase.finish(); held.length > 0; held = phase.finish()) {
      if (!(await this.#write(conn, held))) return phase.stop();
    }
  }

  /** Writes stored messages through the replay writer; queue messages written to a client that cannot ack are acknowledged. */
  #write(conn: Connection, messages: readonly DurableMessage[]): Promise<boolean> {
    return writeMessages(conn, messages, this.#local.options.writeBufferLimit, (written) => this.#ackWritten(conn, written));
  }

  /** This node's store, to a connection that opened: its queues, then the logs after `resume`. */
  async #replay(conn: Connection, queue: ReplayPhase, log: ReplayPhase | undefined, resume: string | undefined): Promise<void> {
    // Failed or closed: what the phases held is written, later sends go live; what a failed read missed stays stored for the next connection.
    try {
      try {
        await this.#replayPages(conn, queueRefsOf(conn), '', undefined, (mark) => queue.read(true, mark));
      } finally {
        await this.#finish(conn, queue);
      }
      if (log !== undefined) await this.#replayPages(conn, logRefsOf(conn), resume!, undefined, (mark) => log.read(false, mark));
    } finally {
      if (log !== undefined) await this.#finish(conn, log);
    }
  }

  /**
   * Writes this node's stored messages for `refs` after `cursor`, oldest first, a page at a
   * time, until a short page. `onRead` gets each page's mark (the store's highest id when it read).
   */
  async #replayPages(
    conn: Connection,
    refs: TargetRef[],
    cursor: string,
    events: string[] | undefined,
    onRead?: (mark: string) => void,
  ): Promise<void> {
    for (;;) {
      if (conn.closed || this.#closed) return;
      const { messages: rows, mark } = await this.#store!.messagesFor(refs, cursor, REPLAY_PAGE, Date.now(), events);
      onRead?.(mark);
      if (rows.length > 0) {
        if (!(await this.#write(conn, rows))) return;
        cursor = rows[rows.length - 1]!.id;
      }
      if (rows.length < REPLAY_PAGE) return;
    }
  }

  // ---- management --------------------------------------------------------------------

  /** A stored message and the targets still pending (or retained), or undefined when gone. */
  async status(messageId: string): Promise<QosStatus | undefined> {
    const store = this.#requireStore();
    if (!isMessageId(messageId)) return undefined;
    const found = await store.get(messageId);
    if (found === undefined) return undefined;
    const m = found.message;
    return {
      messageId: m.id,
      kind: m.kind,
      event: m.event,
      listening: m.listening,
      createdAt: m.createdAt,
      expiresAt: m.expiresAt,
      targets: found.targets,
    };
  }

  /** Deletes a message: it will not be resent. Resolves to whether it existed. */
  async cancel(messageId: string): Promise<boolean> {
    const store = this.#requireStore();
    if (!isMessageId(messageId)) return false;
    const targets = await store.delete(messageId);
    if (targets === undefined) return false;
    this.#waits.settle(messageId, false);
    this.#counts.removed();
    for (const t of targets) this.#counts.add(t.kind, t.key, -1);
    return true;
  }

  /**
   * Pending messages of one user or token, or stored messages in total when no target is
   * given. With a Redis store this is this node's view: exact for what this node did,
   * other nodes' sends and acks show after the next expiry tick (`expiryIntervalMs`).
   */
  pendingCount(target?: { userId?: Key; accessToken?: string }): number {
    if (target?.userId !== undefined) return this.#counts.of('user', String(target.userId));
    if (target?.accessToken !== undefined) return this.#counts.of('token', target.accessToken);
    return this.#counts.total;
  }

  /** A page of stored messages for admin listings. */
  async list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }> {
    return this.#requireStore().list(filter, offset, limit);
  }

  /**
   * Removes expired messages now and fires `qos-expired` for every target still pending.
   * Resolves to the messages removed. With a shared store each expired message is removed,
   * and reported, by one node only.
   */
  async expireNow(): Promise<number> {
    if (this.#closed || this.#store === undefined) return 0;
    let removed = 0;
    try {
      for (;;) {
        const expired = await this.#store.expire(Date.now(), EXPIRE_PAGE);
        for (const { message, targets } of expired) {
          this.#counts.removed();
          this.#waits.settle(message.id, false);
          for (const t of targets) {
            if (!QUEUE_KINDS.has(t.kind)) continue;
            this.#counts.add(t.kind, t.key, -1);
            this.emit('qos-expired', { messageId: message.id, kind: t.kind as 'user' | 'token', key: t.key, event: message.event });
          }
        }
        removed += expired.length;
        if (expired.length < EXPIRE_PAGE) break;
      }
    } catch (err) {
      this.emit('error', err);
    }
    return removed;
  }

  /** A replay's error is reported, unless the store was closed under it (a shutdown: the replay ends with the stream). */
  #replayFailed(err: unknown): void {
    if (!this.#closed) this.emit('error', err);
  }

  /** Commits what is waiting and closes the database (or the Redis connection). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#waits.settleAll();
    await this.#store?.close();
  }
}

/** The longest wait of `waitForDelivery` in ms (the message's lifetime for `true`), or undefined without it. */
function waitForDeliveryOf(value: boolean | number | undefined, kind: TargetKind, ttlMs: number): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true && !(typeof value === 'number' && value > 0))
    throw new TypeError(`waitForDelivery must be a boolean or a positive number of ms, got ${String(value)}`);
  if (!QUEUE_KINDS.has(kind)) throw new TypeError(`waitForDelivery is for user and token sends: a ${kind} message is never acknowledged`);
  return value === true ? ttlMs : Math.min(value, ttlMs);
}
