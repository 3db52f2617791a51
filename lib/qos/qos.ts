import { EventEmitter } from 'node:events';
import { SseTooFewCopiesError } from '../core/errors.js';
import type { TargetKind } from '../core/targets.js';
import { keysOf, type Key } from '../core/user.js';
import type { LocalNode } from '../local/local-node.js';
import { DeliveryWaits } from './delivery-waits.js';
import { DurableDelivery } from './durable-delivery.js';
import type { DurableRole } from './durable-role.js';
import { isMessageId } from './message-id.js';
import type { QosEvents, QosSendOptions, QosSendResult, QosStatus } from './qos-api.js';
import type { AckedBy, AckItem, QosCluster, ReplicationStats } from './qos-cluster.js';
import { newConnectionLogOf, type QosOptions, type ResolvedReplication } from './qos-options.js';
import { QUEUE_KINDS, type StoredEntry, type StoreFilter } from './qos-store.js';
import { Relay } from './relay.js';
import { Replay } from './replay.js';
import { StoreOwner } from './store-owner.js';
import { queueRefsOf } from './target-refs.js';

export type { QosOptions, QosReplicationOptions } from './qos-options.js';
export type { ReplicationStats } from './qos-cluster.js';
export type { QosAckedEvent, QosEvents, QosExpiredEvent, QosSendOptions, QosSendResult, QosStatus } from './qos-api.js';

/**
 * Durable at-least-once delivery for one hub (`hub.qos`). A send is committed to its store
 * (SQLite, or Redis shared by the nodes) before its promise resolves, then written to the
 * live targets. Users and tokens are queues (pending until acknowledged); tenants, channels
 * and "all" are a retained log that a connection resuming with `Last-Event-ID` replays.
 *
 * A facade over its parts: the node's role (a `StoreOwner` with the `qos` option, a
 * `Relay` in a cluster without one), the live delivery (`DurableDelivery`), the replay of
 * stored messages (`Replay`) and, when clustered, the {@link QosCluster} interface: messages owned by peers are forwarded by them, pulled from them when a
 * connection opens, and acknowledged back to them.
 */
export class Qos extends EventEmitter<QosEvents> {
  readonly #role: DurableRole;
  readonly #cluster: QosCluster | undefined;
  readonly #delivery: DurableDelivery;
  readonly #replay: Replay;
  /** Sends whose promise waits for delivery (`waitForDelivery`). */
  readonly #waits = new DeliveryWaits();
  /** `qos.replication` when this node's sends are copied to peers (a SQLite store in a cluster, `copies` > 1). */
  readonly #replication: ResolvedReplication | undefined;
  #closed = false;

  /**
   * @internal Created by the hub: with `options` (its `qos` option) it owns a store; with
   * `cluster` it also serves the messages peers own.
   * @param nameGiven whether the hub's name is the app's own choice (a Redis store needs one: see `qos.redisPrefix`)
   */
  constructor(local: LocalNode, options: QosOptions | undefined, cluster: QosCluster | undefined, nameGiven = true) {
    super();
    const role = (this.#role = options === undefined ? new Relay() : new StoreOwner(options, local.options.name, nameGiven));
    this.#cluster = cluster;
    // Only a store of one process is copied (SQLite): a shared one is its own copy.
    const replication = role instanceof StoreOwner && role.copies !== undefined ? role.replication : undefined;
    this.#replication = cluster !== undefined && replication !== undefined && replication.copies > 1 ? replication : undefined;
    const delivery = (this.#delivery = new DurableDelivery(local, role.tag));
    // Subscribes to the local node now, before the hub does: a replay is under way before any
    // `connect` listener of the app can send.
    this.#replay = new Replay(local, delivery, role.pages, cluster, newConnectionLogOf(options?.newConnectionLogMs));
    const report = (err: unknown): void => void this.emit('error', err);
    role.on('error', report);
    role.on('qos-acked', (event) => {
      // The holders of copies drop the target too (batched per tick).
      if (this.#replication !== undefined) cluster?.dropCopies([{ messageId: event.messageId, targets: [{ kind: event.kind, key: event.key }] }], []);
      if (event.complete) this.#waits.settle(event.messageId, true);
      this.emit('qos-acked', event);
    });
    role.on('qos-expired', (event) => {
      this.#waits.settle(event.messageId, false);
      this.emit('qos-expired', event);
    });
    this.#replay.on('error', report);
    delivery.on('written', (conn, items) => void this.#acknowledge(items, conn.id, 'write').catch(report));
    // What this node answers its peers: its parts below this facade, never the facade itself.
    cluster?.serve({
      tag: role.tag,
      deliver: (send) => delivery.deliver(send, send.keys),
      ack: (items, connectionId, by) => role.ackForwarded(items, connectionId, by),
      pendingFor: (request, limit) => role.pendingFor(request, limit),
      list: async (filter, limit) => (role.hasStore ? role.list(filter, 0, limit) : { total: 0, items: [] }),
      get copies() {
        return role.copies;
      },
      replication,
      ownerAway: (tag) => {
        if (!this.#closed) this.#replay.pullCopiesOf(tag);
      },
      pullFrom: (peerId) => {
        if (!this.#closed) this.#replay.pullFrom(peerId);
      },
      readOwnAgain: () => {
        if (!this.#closed) this.#replay.readOwnAgain();
      },
      acksMeanwhile: (acks) => role.acksMeanwhile(acks),
      held: (ids) => role.held(ids),
      ownPage: (after, limit) => role.ownPage(after, limit),
    });
  }

  /** Ends every message id of this node's store; undefined without a store. Nodes sharing a Redis store share it. */
  get tag(): string | undefined {
    return this.#role.tag;
  }

  /** Whether this node has a durable store of its own (the `qos` option). */
  get hasStore(): boolean {
    return this.#role.hasStore;
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
    const wait = waitForDeliveryOf(options?.waitForDelivery, kind);
    const replication = this.#replication;
    const cluster = this.#cluster;
    if (replication?.whenShort === 'fail' && keys.length > 0) {
      // Too few nodes up: refused before anything is stored.
      const possible = 1 + cluster!.copyHolders();
      if (possible < replication.copies) throw new SseTooFewCopiesError(possible, replication.copies);
    }
    const { id, message } = await this.#role.commit(kind, keys, event, data, options);
    if (message === undefined)
      return wait === undefined ? { messageId: id, delivered: 0, copies: 1 } : { messageId: id, delivered: 0, copies: 1, acknowledged: true };
    const replicating = replication === undefined ? undefined : cluster!.replicate({ ...message, keys }, replication.copies, replication.timeoutMs);
    if (replication?.whenShort === 'fail') {
      const holders = await replicating!;
      if (holders.length + 1 < replication.copies) {
        // Deleted again, here and on the replicas that did commit, before it was written anywhere.
        await this.#role.cancel(id);
        cluster!.dropCopies([], [id]);
        throw new SseTooFewCopiesError(holders.length + 1, replication.copies);
      }
    }
    // Waiting before any delivery: an ack can then never come before the wait. Another node
    // sharing the store may remove the message: then the store is asked whether it is gone.
    const role = this.#role;
    const waiting =
      wait === undefined
        ? undefined
        : this.#waits.wait(
            id,
            Math.min(wait, message.expiresAt - Date.now()),
            role.shared ? async () => (await role.status(id)) === undefined : undefined,
          );
    let delivered = this.#delivery.deliver(message, keys);
    if (cluster !== undefined) {
      // Peers write it to their connections; their acks come back to this node, the owner.
      const { listening } = message;
      delivered += await cluster.forwardSend({ id, kind, keys, event, data: message.data, listening });
    }
    const copies = replicating === undefined ? 1 : 1 + (await replicating).length;
    if (waiting === undefined) return { messageId: id, delivered, copies };
    return { messageId: id, delivered, copies, acknowledged: await waiting };
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
    const tag = this.#role.tag;
    const own = tag === undefined ? [] : items.filter((i) => i.messageId.endsWith(tag));
    const foreign = tag === undefined ? items : items.filter((i) => !i.messageId.endsWith(tag));
    const [local, remote] = await Promise.all([
      this.#role.removeOwn(own, connectionId, by),
      foreign.length > 0 && this.#cluster !== undefined ? this.#cluster.forwardAcks(foreign, connectionId, by) : 0,
    ]);
    return local + remote;
  }

  // ---- replay ------------------------------------------------------------------------

  /**
   * @internal A peer with a store (re)joined: it may hold messages for the connections here
   * (they connected while it was away). Pull them from that peer only.
   */
  pullFrom(peerId: string): void {
    if (!this.#closed) this.#replay.pullFrom(peerId);
  }

  // ---- management --------------------------------------------------------------------

  /** A stored message and the targets still pending (or retained), or undefined when gone. */
  status(messageId: string): Promise<QosStatus | undefined> {
    return this.#role.status(messageId);
  }

  /** Deletes a message: it will not be resent. Resolves to whether it existed. */
  async cancel(messageId: string): Promise<boolean> {
    const existed = await this.#role.cancel(messageId);
    if (existed) {
      this.#waits.settle(messageId, false);
      if (this.#replication !== undefined) this.#cluster?.dropCopies([], [messageId]);
    }
    return existed;
  }

  /**
   * Pending messages of one user or token, or stored messages in total when no target is
   * given. With a Redis store this is this node's view: exact for what this node did,
   * other nodes' sends and acks show after the next expiry tick (`expiryIntervalMs`).
   */
  pendingCount(target?: { userId?: Key; accessToken?: string }): number {
    return this.#role.pendingCount(target);
  }

  /**
   * Counts of the copies of durable messages on a LAN cluster (`qos.replication`) since this
   * node started: copies held for peers, this node's sends replicated or short, messages served
   * from copies while their owner was away, acks kept for or told to owners, duplicates seen
   * when an owner came back (delivered on both sides of a partition), copies made again.
   */
  replicationStats(): ReplicationStats {
    const stats = this.#cluster?.replicationStats();
    if (stats !== undefined) return stats;
    let held = 0;
    try {
      held = this.#role.copies?.count() ?? 0;
    } catch {
      // closed
    }
    return { held, replicated: 0, underReplicated: 0, servedFromCopies: 0, acksKept: 0, acksReconciled: 0, duplicates: 0, rereplicated: 0 };
  }

  /** A page of stored messages for admin listings. */
  list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }> {
    return this.#role.list(filter, offset, limit);
  }

  /**
   * A page of the stored messages of every store in the cluster (the Java
   * `repositoryMessages.json` lists the cluster's): this node's, and one peer's per other store
   * (nodes sharing a store are asked once), oldest first (ids start with the time). `partial`:
   * a peer's store did not answer (within `timeoutMs`, default `cluster.timeoutMs`). Each store
   * is read up to `offset + limit` messages.
   */
  async listCluster(
    filter: StoreFilter,
    offset: number,
    limit: number,
    timeoutMs?: number,
  ): Promise<{ total: number; items: StoredEntry[]; partial: boolean; failed: string[] }> {
    const own = this.#role.list(filter, 0, offset + limit);
    const remote = this.#cluster === undefined ? { listings: [], failed: [] } : await this.#cluster.listStores(filter, offset + limit, timeoutMs);
    const listings = [await own, ...remote.listings];
    const items = listings.flatMap((l) => l.items).sort((a, b) => (a.message.id < b.message.id ? -1 : a.message.id > b.message.id ? 1 : 0));
    const total = listings.reduce((n, l) => n + l.total, 0);
    return { total, items: items.slice(offset, offset + limit), partial: remote.failed.length > 0, failed: remote.failed };
  }

  /**
   * Removes expired messages now and fires `qos-expired` for every target still pending.
   * Resolves to the messages removed. With a shared store each expired message is removed,
   * and reported, by one node only.
   */
  expireNow(): Promise<number> {
    return this.#role.expireNow();
  }

  /** Commits what is waiting and closes the database (or the Redis connection). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waits.settleAll();
    await this.#role.close();
  }
}

/** The longest wait of `waitForDelivery` in ms (`Infinity` for `true`: the message's lifetime bounds it), or undefined without it. */
function waitForDeliveryOf(value: boolean | number | undefined, kind: TargetKind): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true && !(typeof value === 'number' && value > 0)) {
    throw new TypeError(`waitForDelivery must be a boolean or a positive number of ms, got ${String(value)}`);
  }
  if (!QUEUE_KINDS.has(kind)) throw new TypeError(`waitForDelivery is for user and token sends: a ${kind} message is never acknowledged`);
  return value === true ? Infinity : value;
}
