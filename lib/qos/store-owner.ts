import { EventEmitter } from 'node:events';
import { SseClosedError, SsePayloadTooLargeError } from '../core/errors.js';
import { serializeData } from '../core/frame.js';
import { positiveFinite } from '../core/option-checks.js';
import type { TargetKind, TargetRef } from '../core/targets.js';
import type { Key } from '../core/user.js';
import type { DurableRole, DurableRoleEvents, OwnPages } from './durable-role.js';
import { idempotencyKeyOf } from './idempotency-key.js';
import { isMessageId, MessageIdGenerator } from './message-id.js';
import { PendingCounts } from './pending-counts.js';
import type { QosSendOptions, QosStatus } from './qos-api.js';
import type { AckedBy, AckItem, AcksMeanwhile, CopyAck, CopyHolder, CopyItem, DurableMessage, PendingRequest } from './qos-cluster.js';
import { resolveQosOptions, type QosOptions, type ResolvedReplication } from './qos-options.js';
import {
  type InsertedMessage,
  QUEUE_KINDS,
  type NewMessage,
  type QosStore,
  type RemovedTarget,
  type StoredEntry,
  type StoreFilter,
  type StoredMessage,
} from './qos-store.js';
import { RedisQosStore } from './redis-store.js';
import { SqliteQosStore } from './sqlite-store.js';

const EXPIRE_PAGE = 5000;

/**
 * The role of a node with a durable store (the `qos` option): it commits sends (the caps
 * checked by {@link PendingCounts}, or by a shared Redis store itself), removes acknowledged
 * entries, expires messages, and answers its peers what it holds for their connections.
 * Its tag ends every id it mints: the owner of a message is found by its id.
 */
export class StoreOwner extends EventEmitter<DurableRoleEvents> implements DurableRole, OwnPages {
  readonly hasStore = true;
  readonly tag: string;
  readonly #store: QosStore;
  /** Ids of sends without targets (never stored). */
  readonly #ids: MessageIdGenerator;
  readonly #ttlMs: number;
  readonly #maxBytes: number;
  readonly #counts: PendingCounts;
  /** Set until the counts are first loaded from the store: the SQLite caps wait for it. */
  #countsLoading: Promise<void> | undefined;
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  /** The copies of peers' messages this node holds (a SQLite store: in tables of its file). */
  readonly #copies: (CopyHolder & { expire(now?: number): number }) | undefined;
  /** `qos.replication` with its defaults. */
  readonly replication: ResolvedReplication;

  /** @param nameGiven whether the hub's name is the app's own choice (a Redis store needs one: see `qos.redisPrefix`) */
  constructor(options: QosOptions, hubName: string, nameGiven: boolean) {
    super();
    const o = resolveQosOptions(options, hubName, nameGiven);
    this.#ttlMs = o.ttlMs;
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
    this.replication = o.replication;
    this.#copies = this.#store instanceof SqliteQosStore ? this.#store.openCopies() : undefined;
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

  get copies(): CopyHolder | undefined {
    return this.#closed ? undefined : this.#copies;
  }

  get pages(): OwnPages {
    return this;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether other processes share the store (they may remove its messages). */
  get shared(): boolean {
    return this.#store.shared;
  }

  /**
   * (Re)loads the pending counts from the store. A shared store's counts change on other
   * nodes too: they are reloaded at every expiry tick, so `pendingCount` lags by at most that.
   */
  async #loadCounts(): Promise<void> {
    try {
      const { queues, total } = await this.#store.counts();
      this.#counts.reset(queues, total);
    } catch (err) {
      this.emit('error', err);
    }
  }

  async #tick(): Promise<void> {
    await this.expireNow();
    try {
      if (!this.#closed) this.#copies?.expire();
    } catch (err) {
      this.emit('error', err);
    }
    if (this.#store.shared && !this.#closed) await this.#loadCounts();
  }

  #open(): QosStore {
    if (this.#closed) throw new SseClosedError('The durable queue');
    return this.#store;
  }

  async commit(
    kind: TargetKind,
    keys: string[],
    event: string,
    data: unknown,
    options: QosSendOptions | undefined,
  ): Promise<{ id: string; message?: StoredMessage }> {
    const store = this.#open();
    if (typeof event !== 'string' || event === '') throw new TypeError('event must be a non-empty string');
    const ttlMs = positiveFinite(options?.ttlMs, 'ttlMs', this.#ttlMs);
    const text = serializeData(data);
    if (Buffer.byteLength(text) > this.#maxBytes) throw new SsePayloadTooLargeError('Durable message', this.#maxBytes);
    const now = Date.now();
    const fresh: NewMessage = { kind, event, data: text, listening: options?.listening === true, createdAt: now, expiresAt: now + ttlMs };
    if (keys.length === 0) return { id: this.#ids.next(now) };
    const key = idempotencyKeyOf(options?.idempotencyKey);
    let message: InsertedMessage;
    if (store.shared) {
      // The store checks the caps with the insert, for every node sharing it.
      message = await store.insert(fresh, keys, key);
      if (message.duplicate !== true) this.#counts.added(kind, keys);
    } else {
      if (this.#countsLoading !== undefined) await this.#countsLoading;
      this.#counts.reserve(kind, keys);
      try {
        message = await store.insert(fresh, keys, key);
      } catch (err) {
        this.#counts.release(kind, keys);
        throw err;
      }
      if (message.duplicate === true) this.#counts.release(kind, keys);
    }
    // A retry of a send already stored: its id, and nothing delivered again.
    if (message.duplicate === true) return { id: message.id };
    return { id: message.id, message };
  }

  async removeOwn(items: AckItem[], connectionId: string, by: AckedBy): Promise<number> {
    if (items.length === 0 || this.#closed) return 0;
    return this.#onRemoved(await this.#store.remove(items), connectionId, by);
  }

  async ackForwarded(items: AckItem[], connectionId: string, by: AckedBy): Promise<number> {
    if (this.#closed) return 0;
    const valid = items.filter((i) => isMessageId(i.messageId) && i.targets.every((t) => QUEUE_KINDS.has(t.kind)));
    if (valid.length === 0) return 0;
    return this.#onRemoved(await this.#store.remove(valid), connectionId, by);
  }

  async acksMeanwhile(acks: CopyAck[]): Promise<AcksMeanwhile> {
    if (this.#closed) return { removed: 0, already: 0 };
    const own = acks.filter((a) => isMessageId(a.messageId) && a.messageId.endsWith(this.tag) && QUEUE_KINDS.has(a.kind));
    // One remove per connection and way: the events say who acked.
    const groups = new Map<string, { connectionId: string; by: AckedBy; items: AckItem[] }>();
    for (const a of own) {
      const by: AckedBy = a.by === 'write' ? 'write' : 'ack';
      const key = `${by} ${a.connectionId}`;
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { connectionId: String(a.connectionId), by, items: [] }));
      group.items.push({ messageId: a.messageId, targets: [{ kind: a.kind, key: a.key }] });
    }
    let removed = 0;
    for (const g of groups.values()) removed += this.#onRemoved(await this.#store.remove(g.items), g.connectionId, g.by);
    return { removed, already: own.length - removed };
  }

  async held(ids: string[]): Promise<string[]> {
    if (this.#closed) return [];
    const held: string[] = [];
    for (const id of ids) if (isMessageId(id) && (await this.#store.get(id)) !== undefined) held.push(id);
    return held;
  }

  async ownPage(afterId: string, limit: number): Promise<CopyItem[]> {
    // Only a SQLite store is copied (qos.replication).
    if (this.#closed || !(this.#store instanceof SqliteQosStore)) return [];
    const items: CopyItem[] = [];
    for (const { message: m, targets } of this.#store.after(afterId, limit)) {
      const keys = targets.filter((t) => t.kind === m.kind).map((t) => t.key);
      if (keys.length > 0) items.push({ ...m, keys });
    }
    return items;
  }

  #onRemoved(removed: RemovedTarget[], connectionId: string, by: AckedBy): number {
    for (const r of removed) {
      this.#counts.add(r.kind, r.key, -1);
      if (r.last) this.#counts.removed();
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

  async pendingFor(request: PendingRequest, limit: number): Promise<DurableMessage[]> {
    if (this.#closed) return [];
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

  page(refs: TargetRef[], cursor: string, limit: number, events: string[] | undefined): Promise<{ messages: StoredMessage[]; mark: string }> {
    return this.#store.messagesFor(refs, cursor, limit, Date.now(), events);
  }

  async status(messageId: string): Promise<QosStatus | undefined> {
    const store = this.#open();
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

  async cancel(messageId: string): Promise<boolean> {
    const store = this.#open();
    if (!isMessageId(messageId)) return false;
    const targets = await store.delete(messageId);
    if (targets === undefined) return false;
    this.#counts.removed();
    for (const t of targets) this.#counts.add(t.kind, t.key, -1);
    return true;
  }

  pendingCount(target?: { userId?: Key; accessToken?: string }): number {
    if (target?.userId !== undefined) return this.#counts.of('user', String(target.userId));
    if (target?.accessToken !== undefined) return this.#counts.of('token', target.accessToken);
    return this.#counts.total;
  }

  async list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }> {
    return this.#open().list(filter, offset, limit);
  }

  async expireNow(): Promise<number> {
    if (this.#closed) return 0;
    let removed = 0;
    try {
      for (;;) {
        const expired = await this.#store.expire(Date.now(), EXPIRE_PAGE);
        for (const { message, targets } of expired) {
          this.#counts.removed();
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#store.close();
  }
}
