import type { Connection } from '../local/connection.js';
import { SseClosedError, SsePayloadTooLargeError, SseQueueFullError } from '../core/errors.js';
import { encodeFrame, serializeData } from '../core/frame.js';
import type { Hub, SendOptions } from '../hub.js';
import { positive } from '../options.js';
import { keysOf, type Key } from '../core/user.js';
import type { WireMessage } from '../cluster/messages.js';
import { isMessageId, MessageIdGenerator } from './message-id.js';
import { logRefsOf, queueRefFor, queueRefsOf } from './target-refs.js';
import { QUEUE_KINDS, QosStore, type RemovedTarget, type StoreFilter, type StoredMessage, type TargetKind, type TargetRef } from './store.js';

/** Options of durable delivery (`qos` option of the plugin or hub). */
export interface QosOptions {
  /** SQLite database file (its folder is created on demand), or `:memory:` for tests. Required. */
  file: string;
  /** Default time a message is kept: pending for queues, retained for logs. Default 7 days. */
  ttlMs?: number;
  /** SQLite `synchronous`: `NORMAL` survives a process crash, `FULL` also a power loss. Default `NORMAL`. */
  synchronous?: 'NORMAL' | 'FULL';
  /** Most pending messages per user or token; a send beyond it fails with `ERR_SSE_QUEUE_FULL`. Default `10000`. */
  maxPendingPerTarget?: number;
  /** Most stored messages in total. Default `1000000`. */
  maxMessages?: number;
  /** Largest serialized payload of a durable message, in bytes. Default 256 KiB. */
  maxMessageBytes?: number;
  /** How often expired messages are removed (and `qos-expired` fired), in ms. Default `60000`. */
  expiryIntervalMs?: number;
}

/** Options of a durable send. */
export interface QosSendOptions extends SendOptions {
  /** Time to keep the message, in ms. Default: the `ttlMs` option. */
  ttlMs?: number;
}

/** What a durable send resolves to, once the message is committed. */
export interface QosSendResult {
  /** Time-sortable id: the SSE `id:` of the event, usable with `status` and `cancel`. */
  messageId: string;
  /** Connections it was written to (or is being replayed to) right now. */
  delivered: number;
}

/** Payload of the hub's `qos-acked` event: one target is done with a message. */
export interface QosAckedEvent {
  messageId: string;
  kind: 'user' | 'token';
  key: string;
  /** The connection that acknowledged it. */
  connectionId: string;
  /** `ack`: the client acknowledged; `write`: written to a client that cannot acknowledge. */
  by: 'ack' | 'write';
  /** No target of the message is left pending. */
  complete: boolean;
}

/** Payload of the hub's `qos-expired` event: a target never acknowledged the message in time. */
export interface QosExpiredEvent {
  messageId: string;
  kind: 'user' | 'token';
  key: string;
  event: string;
}

/** What `status` tells of a stored message. */
export interface QosStatus {
  messageId: string;
  kind: TargetKind;
  event: string;
  listening: boolean;
  createdAt: number;
  expiresAt: number;
  /** Targets that have not acknowledged it (queues), or that it is retained for (logs). */
  targets: TargetRef[];
}

const REPLAY_PAGE = 1000;
const EXPIRE_PAGE = 5000;
const DAY = 24 * 60 * 60 * 1000;

/** Per-connection replay state, kept off the Connection object. */
interface ReplayState {
  /** Live queue messages are left to the running replay (it pages until nothing is left). */
  queue: boolean;
  /** Same for retained-log messages while a `Last-Event-ID` resume runs. */
  log: boolean;
  /** Commit sequence the replay last read at: anything committed by then is in the replay. */
  seq: number;
}

/**
 * Durable at-least-once delivery for one hub (`hub.qos`). A send is committed to SQLite
 * before its promise resolves, then written to the live targets. Users and tokens are
 * queues (pending until acknowledged); tenants, channels and "all" are a retained log that
 * a connection resuming with `Last-Event-ID` replays.
 */
export class Qos {
  readonly #hub: Hub;
  readonly #store: QosStore;
  readonly #ids: MessageIdGenerator;
  /** Ends every message id of this store (see {@link QosStore.tag}). */
  readonly tag: string;
  readonly #ttlMs: number;
  readonly #maxPerTarget: number;
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #pending = new Map<string, number>();
  readonly #replays = new WeakMap<Connection, ReplayState>();
  #total: number;
  #timer: NodeJS.Timeout;
  #closed = false;

  /** @internal Created by the hub from its `qos` option. */
  constructor(hub: Hub, options: QosOptions) {
    if (options === null || typeof options !== 'object' || typeof options.file !== 'string' || options.file === '') {
      throw new TypeError('qos.file must be a path or ":memory:"');
    }
    if (options.synchronous !== undefined && options.synchronous !== 'NORMAL' && options.synchronous !== 'FULL') {
      throw new TypeError('qos.synchronous must be "NORMAL" or "FULL"');
    }
    this.#hub = hub;
    this.#ttlMs = positive(options.ttlMs, 'qos.ttlMs', 7 * DAY);
    this.#maxPerTarget = positive(options.maxPendingPerTarget, 'qos.maxPendingPerTarget', 10_000);
    this.#maxMessages = positive(options.maxMessages, 'qos.maxMessages', 1_000_000);
    this.#maxBytes = positive(options.maxMessageBytes, 'qos.maxMessageBytes', 256 * 1024);
    const interval = positive(options.expiryIntervalMs, 'qos.expiryIntervalMs', 60_000);
    this.#store = new QosStore(options.file, options.synchronous ?? 'NORMAL');
    this.tag = this.#store.tag();
    this.#ids = new MessageIdGenerator(this.tag);
    for (const { kind, key, n } of this.#store.queueCounts()) this.#pending.set(countKey(kind, key), n);
    this.#total = this.#store.totalMessages();
    this.#timer = setInterval(() => this.expireNow(), interval);
    this.#timer.unref();
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
    if (this.#closed) throw new SseClosedError('The durable queue');
    if (typeof event !== 'string' || event === '') throw new TypeError('event must be a non-empty string');
    const ttlMs = positive(options?.ttlMs, 'ttlMs', this.#ttlMs);
    const text = serializeData(data);
    if (Buffer.byteLength(text) > this.#maxBytes) throw new SsePayloadTooLargeError('Durable message', this.#maxBytes);
    const now = Date.now();
    const message: StoredMessage = {
      id: this.#ids.next(now),
      kind,
      event,
      data: text,
      listening: options?.listening === true,
      createdAt: now,
      expiresAt: now + ttlMs,
    };
    const frame = encodeFrame({ event, data: text, id: message.id });
    if (keys.length === 0) return { messageId: message.id, delivered: 0 };
    this.#reserve(kind, keys);
    let seq: number;
    try {
      seq = await this.#store.insert(message, keys);
    } catch (err) {
      this.#release(kind, keys);
      throw err;
    }
    let delivered = this.#deliverLive(message, keys, frame, seq);
    const cluster = this.#hub.cluster;
    if (cluster !== undefined) {
      // Peers write it to their connections; their acks come back to this node, the owner.
      const remote = await cluster.send({ kind, keys, event, data: text, listening: message.listening, id: message.id });
      for (const n of remote.values) delivered += n;
    }
    return { messageId: message.id, delivered };
  }

  /** Checks and takes the caps before anything is stored, so a full queue stores nothing. */
  #reserve(kind: TargetKind, keys: string[]): void {
    if (this.#total >= this.#maxMessages) {
      throw new SseQueueFullError(`The durable queue holds its maximum of ${this.#maxMessages} messages`);
    }
    if (QUEUE_KINDS.has(kind)) {
      for (const key of keys) {
        if ((this.#pending.get(countKey(kind, key)) ?? 0) >= this.#maxPerTarget) {
          throw new SseQueueFullError(`${kind} ${key.slice(0, 64)} has ${this.#maxPerTarget} pending durable messages`);
        }
      }
      for (const key of keys) this.#count(kind, key, 1);
    }
    this.#total++;
  }

  #release(kind: TargetKind, keys: string[]): void {
    this.#total--;
    if (QUEUE_KINDS.has(kind)) for (const key of keys) this.#count(kind, key, -1);
  }

  #count(kind: TargetKind, key: string, delta: number): void {
    const k = countKey(kind, key);
    const n = (this.#pending.get(k) ?? 0) + delta;
    if (n > 0) this.#pending.set(k, n);
    else this.#pending.delete(k);
  }

  #deliverLive(message: StoredMessage, keys: string[], frame: Buffer, seq: number): number {
    const queue = QUEUE_KINDS.has(message.kind);
    let delivered = 0;
    for (const conn of this.#hub._targets(message.kind, keys)) {
      if (message.listening && !conn.listeners.has(message.event)) continue;
      const replay = this.#replays.get(conn);
      if (replay !== undefined && ((queue ? replay.queue : replay.log) || replay.seq >= seq)) {
        delivered++; // the running replay has it, or will write it in order
        continue;
      }
      if (!conn.write(frame)) continue;
      delivered++;
      if (queue && !conn.client.ack) this.#ackByWrite(conn, [message]);
    }
    return delivered;
  }

  // ---- acknowledgement ---------------------------------------------------------------

  /**
   * Acknowledges messages for this connection's user and token. Ids of other users'
   * messages, unknown or already acknowledged ids do nothing. Resolves to the number of
   * pending entries removed.
   */
  async ack(conn: Connection, messageIds: readonly string[]): Promise<number> {
    return this.ackFor(queueRefsOf(conn), messageIds, conn.id);
  }

  /** Acknowledges for these user / token targets; messages owned by peers are acked at their owner. */
  async ackFor(refs: TargetRef[], messageIds: readonly string[], connectionId: string): Promise<number> {
    if (refs.length === 0) return 0;
    const items = messageIds.filter(isMessageId).map((messageId) => ({ messageId, targets: refs }));
    if (items.length === 0) return 0;
    const own = items.filter((i) => i.messageId.endsWith(this.tag));
    const foreign = items.filter((i) => !i.messageId.endsWith(this.tag));
    const cluster = this.#hub.cluster;
    const [local, remote] = await Promise.all([
      own.length > 0 ? this.#store.remove(own).then((removed) => this.#onRemoved(removed, connectionId, 'ack')) : 0,
      foreign.length > 0 && cluster !== undefined ? cluster.forwardAcks(foreign, connectionId, 'ack') : 0,
    ]);
    return local + remote;
  }

  #ackByWrite(conn: Connection, messages: StoredMessage[]): void {
    const items: { messageId: string; targets: TargetRef[] }[] = [];
    for (const message of messages) {
      const target = queueRefFor(conn, message.kind);
      if (target !== undefined) items.push({ messageId: message.id, targets: [target] });
    }
    if (items.length === 0) return;
    this.#store.remove(items).then(
      (removed) => this.#onRemoved(removed, conn.id, 'write'),
      (err: unknown) => this.#hub.reportError(err),
    );
  }

  #onRemoved(removed: RemovedTarget[], connectionId: string, by: 'ack' | 'write'): number {
    for (const r of removed) {
      this.#count(r.kind, r.key, -1);
      if (r.last) this.#total--;
      this.#hub._emitQos('qos-acked', {
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
  async _ackForwarded(items: { messageId: string; targets: TargetRef[] }[], connectionId: string, by: 'ack' | 'write'): Promise<number> {
    const valid = items.filter((i) => isMessageId(i.messageId) && i.targets.every((t) => QUEUE_KINDS.has(t.kind)));
    if (valid.length === 0) return 0;
    return this.#onRemoved(await this.#store.remove(valid), connectionId, by);
  }

  /** @internal What a peer's new connection should get from this node: pending queue messages, then the log after its resume point. */
  _pendingFor(refs: TargetRef[], logRefs: TargetRef[], lastEventId: string | undefined, events: string[] | undefined, limit: number): WireMessage[] {
    const now = Date.now();
    const rows = this.#store.messagesFor(refs.filter((r) => QUEUE_KINDS.has(r.kind)), '', limit, now, events);
    if (lastEventId !== undefined && isMessageId(lastEventId) && events === undefined) {
      rows.push(...this.#store.messagesFor(logRefs.filter((r) => !QUEUE_KINDS.has(r.kind)), lastEventId, limit, now));
    }
    return rows.map((m) => ({ id: m.id, kind: m.kind, event: m.event, data: m.data, listening: m.listening }));
  }

  // ---- replay ------------------------------------------------------------------------

  /** @internal A stream opened: resend its user's and token's pending messages, then resume the log. */
  _onOpen(conn: Connection): void {
    const lastEventId = conn.client.lastEventId;
    const resume = lastEventId !== undefined && isMessageId(lastEventId) ? lastEventId : undefined;
    const state: ReplayState = { queue: true, log: resume !== undefined, seq: 0 };
    this.#replays.set(conn, state);
    void this.#replay(conn, state, resume).catch((err: unknown) => this.#hub.reportError(err));
  }

  /** @internal Listeners were added: listening-mode messages for them may now be deliverable. */
  _onListenersAdded(conn: Connection, names: string[]): void {
    if (names.length === 0 || queueRefsOf(conn).length === 0) return;
    void this.#replayPages(conn, queueRefsOf(conn), '', undefined, names).catch((err: unknown) => this.#hub.reportError(err));
  }

  async #replay(conn: Connection, state: ReplayState, resume: string | undefined): Promise<void> {
    try {
      await this.#replayPages(conn, queueRefsOf(conn), '', state, undefined);
      state.queue = false;
      if (resume !== undefined) await this.#replayPages(conn, logRefsOf(conn), resume, state, undefined);
    } finally {
      state.queue = false;
      state.log = false;
    }
  }

  /**
   * Writes stored messages for `refs` after `cursor`, oldest first, a page at a time, and
   * waits for the socket to drain between pages: a backlog never trips the slow-reader cap.
   */
  async #replayPages(conn: Connection, refs: TargetRef[], cursor: string, state: ReplayState | undefined, events: string[] | undefined): Promise<void> {
    const limit = this.#hub.options.writeBufferLimit;
    const drainAt = limit / 2;
    // Frames are joined into chunks: one write per chunk, not per message, and a chunk is
    // small enough that buffer + chunk stays under the slow-reader limit.
    const chunkBytes = Math.max(1024, Math.min(64 * 1024, limit / 4));
    const writeAcked = !conn.client.ack;
    for (;;) {
      if (conn.closed || this.#closed) return;
      const rows = this.#store.messagesFor(refs, cursor, REPLAY_PAGE, Date.now(), events);
      if (state !== undefined) state.seq = this.#store.commitSeq;
      let frames: Buffer[] = [];
      let bytes = 0;
      let written: StoredMessage[] = [];
      const flush = async (): Promise<boolean> => {
        if (frames.length === 0) return true;
        if (conn.bufferedAmount > drainAt) await conn.whenDrained();
        const ok = conn.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes), frames.length);
        if (ok && writeAcked) this.#ackByWrite(conn, written.filter((m) => QUEUE_KINDS.has(m.kind)));
        frames = [];
        written = [];
        bytes = 0;
        return ok;
      };
      for (const row of rows) {
        cursor = row.id;
        if (row.listening && !conn.listeners.has(row.event)) continue;
        const frame = encodeFrame({ event: row.event, data: row.data, id: row.id });
        frames.push(frame);
        written.push(row);
        bytes += frame.length;
        if (bytes >= chunkBytes && !(await flush())) return;
      }
      if (!(await flush())) return;
      if (rows.length < REPLAY_PAGE) return;
    }
  }

  // ---- management --------------------------------------------------------------------

  /** A stored message and the targets still pending (or retained), or undefined when gone. */
  status(messageId: string): QosStatus | undefined {
    if (!isMessageId(messageId)) return undefined;
    const found = this.#store.get(messageId);
    if (found === undefined) return undefined;
    const m = found.message;
    return { messageId: m.id, kind: m.kind, event: m.event, listening: m.listening, createdAt: m.createdAt, expiresAt: m.expiresAt, targets: found.targets };
  }

  /** Deletes a message: it will not be resent. Resolves to whether it existed. */
  async cancel(messageId: string): Promise<boolean> {
    if (!isMessageId(messageId)) return false;
    const targets = this.#store.delete(messageId);
    if (targets === undefined) return false;
    this.#total--;
    for (const t of targets) if (QUEUE_KINDS.has(t.kind)) this.#count(t.kind, t.key, -1);
    return true;
  }

  /** Pending messages of one user or token, or in total when no target is given. */
  pendingCount(target?: { userId?: Key; accessToken?: string }): number {
    if (target?.userId !== undefined) return this.#pending.get(countKey('user', String(target.userId))) ?? 0;
    if (target?.accessToken !== undefined) return this.#pending.get(countKey('token', target.accessToken)) ?? 0;
    return this.#total;
  }

  /** A page of stored messages for admin listings. */
  list(filter: StoreFilter, offset: number, limit: number): ReturnType<QosStore['list']> {
    return this.#store.list(filter, offset, limit);
  }

  /** Removes expired messages now and fires `qos-expired` for every target still pending. */
  expireNow(): number {
    if (this.#closed) return 0;
    let removed = 0;
    try {
      for (;;) {
        const expired = this.#store.expire(Date.now(), EXPIRE_PAGE);
        for (const { message, targets } of expired) {
          this.#total--;
          for (const t of targets) {
            if (!QUEUE_KINDS.has(t.kind)) continue;
            this.#count(t.kind, t.key, -1);
            this.#hub._emitQos('qos-expired', { messageId: message.id, kind: t.kind as 'user' | 'token', key: t.key, event: message.event });
          }
        }
        removed += expired.length;
        if (expired.length < EXPIRE_PAGE) break;
      }
    } catch (err) {
      this.#hub.reportError(err);
    }
    return removed;
  }

  /** Commits what is waiting and closes the database. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#store.close();
  }
}

function countKey(kind: TargetKind, key: string): string {
  return `${kind}\u0000${key}`;
}
