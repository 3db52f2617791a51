import type { HelloAnswer } from '../core/hello.js';
import type {
  AckedBy,
  AckItem,
  CopyAck,
  CopyItem,
  DurableAnswers,
  DurableMessage,
  DurableSend,
  PendingRequest,
  QosCluster,
  ReplicationStats,
  StoreListing,
  StoreListings,
} from '../qos/qos-cluster.js';
import type { StoreFilter } from '../qos/qos-store.js';
import type { ClusterLink } from './cluster-link.js';
import { CopyBatches } from './copy-batches.js';
import { byOwner, tagOf } from './message-owner.js';
import { PENDING_PAGE, PendingPulls, servePulls } from './pending-pulls.js';
import { PullNotices } from './pull-notices.js';
import { Rereplication } from './rereplication.js';
import { rendezvous } from './rendezvous.js';

/** Most messages one peer lists for an admin listing (the listing's deepest page). */
export const MAX_LISTED = 10_000;
/** Most acks, or ids, in one reconciling request to an owner that is back. */
const RECONCILE_PAGE = 5000;
/**
 * After a start, how long an owner not seen yet counts as present: its node may simply not be
 * verified yet, and serving its copies meanwhile would send its messages twice.
 */
const UNSEEN_GRACE_MS = 5000;
/** How long the list of owners whose copies this node holds is reused by pulls (a storm pulls thousands of times a second). */
const TAGS_TTL_MS = 1000;

/**
 * Durable delivery's side of the cluster: implements {@link QosCluster} over the cluster's
 * fan-out ({@link ClusterLink}) and answers the peers' durable requests (`qos-pending`,
 * `qos-pending-batch`, `qos-ack`, and the durable items of their sends) with the
 * {@link DurableAnswers} durable delivery hands it. The cluster knows nothing of durable
 * delivery; durable delivery knows only the interface it declared.
 *
 * A message is owned by the node whose store tag ends its id (message-owner.ts). Peers
 * sharing one store (Redis) share its tag: one of them is asked for all, and they never pull
 * from or forward acks to each other.
 */
export class DurableCluster implements QosCluster {
  readonly #link: ClusterLink;
  /** Durable pulls from peers, batched per peer (see PendingPulls). */
  readonly #pulls: PendingPulls;
  /** This node's store tag, once durable delivery serves (undefined: a node without a store). */
  #ownTag: string | undefined;
  #answers: DurableAnswers | undefined;
  /** Copies of this node's sends, batched per replica and tick. */
  readonly #copies: CopyBatches;
  /** Reconciling with an owner that came up (acks kept for it, stale copies): its pulls wait for it. */
  readonly #reconciling = new Map<string, Promise<void>>();
  /** Removals of this tick to tell the holders of copies. */
  #drops: { items: AckItem[]; ids: string[] } | undefined;
  /** Copies made again when a node stays away (and when each owner tag was last seen up). */
  readonly #again: Rereplication;
  /** Acks kept for this node being fetched from peers that came up: its own replays wait for them. */
  readonly #ownAcks = new Set<Promise<void>>();
  /** The store tag of each peer up, to know whose messages went with a peer that went down. */
  readonly #peerTags = new Map<string, string>();
  /** The owners this node holds copies of, cached for {@link TAGS_TTL_MS}. */
  #tags: { at: number; tags: string[] } | undefined;
  /** Peers this node's durable sends may have missed: told to pull them. */
  readonly #pullNotices: PullNotices;
  /** Acks told by holders after an absence, so that the same ack told by another holder is no duplicate. */
  readonly #told = new Set<string>();
  readonly #stats: Omit<ReplicationStats, 'held'> = {
    replicated: 0,
    underReplicated: 0,
    servedFromCopies: 0,
    acksKept: 0,
    acksReconciled: 0,
    duplicates: 0,
    rereplicated: 0,
  };

  constructor(link: ClusterLink) {
    this.#link = link;
    this.#pullNotices = new PullNotices(link, () => this.#ownTag);
    this.#pulls = new PendingPulls(
      (nodeId, request) => link.request(nodeId, request),
      () => link.closed,
    );
    this.#copies = new CopyBatches(
      (nodeId, request, timeoutMs) => link.request(nodeId, request, timeoutMs),
      (nodeId, err) => link.peerError(nodeId, 'qos-copy', err),
    );
    this.#again = new Rereplication({
      link,
      copies: this.#copies,
      ownTag: () => this.#ownTag,
      answers: () => this.#answers!,
      copyPeers: () => this.#copyPeers(),
      absentTags: () => this.#absentTags(),
      copied: (n) => (this.#stats.rereplicated += n),
    });
  }

  serve(answers: DurableAnswers): void {
    const link = this.#link;
    this.#ownTag = answers.tag;
    this.#answers = answers;
    if (answers.tag !== undefined) link.announce({ qosTag: answers.tag });
    if (answers.copies !== undefined) link.announce({ qosCopies: true });
    link.announce({ qosPullMe: true });
    link.deliverDurable((item) => answers.deliver(item));
    const pulls = { pendingFor: (request: PendingRequest, limit: number) => this.#answerPull(request, limit) };
    link.handle('qos-pending', (_from, request) => pulls.pendingFor(request, PENDING_PAGE));
    link.handle('qos-pending-batch', (_from, request) => servePulls(pulls, request.requests, (err) => link.error(err)));
    link.handle('qos-ack', (_from, request) => answers.ack(request.items, request.connectionId, request.by));
    link.handle('qos-list', (_from, request) => answers.list(request.filter, Math.min(request.limit, MAX_LISTED)));
    link.handle('qos-copy', (_from, request) => {
      const items = request.items.filter((i) => tagOf(i.id) !== this.#ownTag);
      this.#tags = undefined;
      return (answers.copies?.store(items) ?? -1) + request.items.length - items.length;
    });
    link.handle('qos-copy-remove', (_from, request) => {
      const removed = answers.copies?.remove(request.items, request.ids, request.keep) ?? 0;
      if (request.keep !== undefined) this.#stats.acksKept += removed;
      return removed;
    });
    link.handle('qos-copy-acks', (_from, request) => this.#acksMeanwhile(request.acks));
    link.handle('qos-pull-me', (from, request) => {
      // A peer sharing this node's store: the messages are in that store, read it again now.
      if (request.tag !== undefined && request.tag === this.#ownTag) answers.readOwnAgain();
      // Not up here yet: this node pulls from it anyway once it sees it up (peer-up), after its sends.
      else if (link.peers().some((p) => p.nodeId === from)) answers.pullFrom(from);
      return null;
    });
    link.handle('qos-copy-held', (_from, request) => answers.held(request.ids.slice(0, RECONCILE_PAGE)));
    link.handle('qos-copy-acks-of', (_from, request) => {
      const copies = answers.copies;
      if (copies === undefined || request.tag === this.#ownTag) return [];
      const acks = copies.acksOf(request.tag, RECONCILE_PAGE);
      // Told: the owner removes them now (at worst, should it fail, a message comes again: at-least-once).
      copies.forgetAcks(acks);
      return acks;
    });
    link.onPeers(
      (peer) => this.#peerUp(peer),
      (nodeId) => this.#peerDown(nodeId),
    );
    const replication = answers.replication;
    if (answers.copies !== undefined && replication !== undefined) {
      const every = Math.max(50, Math.min(5000, Math.floor(replication.rereplicateAfterMs / 4)));
      const timer = setInterval(() => {
        if (link.closed) clearInterval(timer);
        else void this.#again.tick(replication);
      }, every);
      timer.unref();
    }
  }

  // ---- copies (qos.replication) --------------------------------------------------------

  /** Live peers that can hold copies of this node's messages: a SQLite store of another tag. */
  #copyPeers(): HelloAnswer[] {
    const own = this.#ownTag;
    return this.#link.peers().filter((p) => p.qosCopies === true && p.qosTag !== undefined && p.qosTag !== own);
  }

  copyHolders(): number {
    return this.#copyPeers().length;
  }

  async replicate(item: CopyItem, copies: number, timeoutMs?: number): Promise<string[]> {
    const chosen = rendezvous(`${item.kind}\0${item.keys[0] ?? ''}`, this.#copyPeers()).slice(0, copies - 1);
    const committed = await Promise.all(chosen.map((peer) => this.#copies.copy(peer.nodeId, item, timeoutMs)));
    const holders = chosen.filter((_, i) => committed[i]).map((p) => p.nodeId);
    if (holders.length === copies - 1) this.#stats.replicated++;
    else this.#stats.underReplicated++;
    return holders;
  }

  dropCopies(items: AckItem[], ids: string[]): void {
    if (items.length === 0 && ids.length === 0) return;
    if (this.#drops === undefined) {
      this.#drops = { items: [], ids: [] };
      setImmediate(() => this.#flushDrops());
    }
    this.#drops.items.push(...items);
    this.#drops.ids.push(...ids);
  }

  /** Tells every peer that may hold copies what was removed here this tick (a copy may have moved: it is not known where it is). */
  #flushDrops(): void {
    const drops = this.#drops;
    this.#drops = undefined;
    if (drops === undefined || this.#link.closed) return;
    for (const peer of this.#copyPeers()) {
      this.#link.request(peer.nodeId, { type: 'qos-copy-remove', items: drops.items, ids: drops.ids }).catch((err: unknown) => {
        // It checks its copies with this node when it sees it again (qos-copy-held).
        this.#link.peerError(peer.nodeId, 'qos-copy-remove', err);
      });
    }
  }

  replicationStats(): ReplicationStats {
    let held = 0;
    try {
      held = this.#answers?.copies?.count() ?? 0;
    } catch {
      // closed
    }
    return { held, ...this.#stats };
  }

  /** Owners' tags this node holds copies (or kept acks) of whose owner is not up: it answers for them. */
  #absentTags(): string[] {
    const copies = this.#answers?.copies;
    if (copies === undefined) return [];
    const now = Date.now();
    if (this.#tags === undefined || now - this.#tags.at > TAGS_TTL_MS) this.#tags = { at: now, tags: copies.tags() };
    if (this.#tags.tags.length === 0) return [];
    const up = new Set(this.#link.peers().map((p) => p.qosTag));
    const early = now - this.#again.startedAt < UNSEEN_GRACE_MS;
    return this.#tags.tags.filter((t) => t !== this.#ownTag && !up.has(t) && (!early || this.#again.known(t)));
  }

  /** A pull: this node's own messages, and the copies it holds of owners that are away. */
  async #answerPull(request: PendingRequest, limit: number): Promise<DurableMessage[]> {
    const answers = this.#answers!;
    if (request.copiesOf !== undefined) {
      // Only the copies of an owner that just went away (if it is away here too).
      const tag = request.copiesOf;
      if (answers.copies === undefined || !this.#absentTags().includes(tag)) return [];
      const copied = answers.copies.pendingFor(request, limit, [tag]);
      this.#stats.servedFromCopies += copied.length;
      return copied;
    }
    // Just back: what was acknowledged elsewhere meanwhile is removed before anything is answered.
    await this.ownAcksSettled();
    const own = await answers.pendingFor(request, limit);
    const absent = this.#absentTags();
    if (absent.length === 0 || answers.copies === undefined || own.length >= limit) return own;
    const copied = answers.copies.pendingFor(request, limit - own.length, absent);
    this.#stats.servedFromCopies += copied.length;
    return copied.length === 0 ? own : own.concat(copied);
  }

  /** An owner tells the acks kept for it: removed here, once each (several holders tell the same). */
  async #acksMeanwhile(acks: CopyAck[]): Promise<unknown> {
    const fresh = acks.filter((a) => !this.#told.has(`${a.messageId} ${a.kind} ${a.key}`));
    if (this.#told.size > 100_000) this.#told.clear();
    for (const a of fresh) this.#told.add(`${a.messageId} ${a.kind} ${a.key}`);
    const result = await this.#answers!.acksMeanwhile(fresh);
    this.#stats.acksReconciled += result.removed;
    this.#stats.duplicates += result.already;
    return result;
  }

  ownAcksSettled(): Promise<void> {
    return this.#ownAcks.size === 0 ? Promise.resolve() : Promise.all(this.#ownAcks).then(() => undefined);
  }

  /** Asks a peer that came up for the acks of this node's messages it kept while this node was away, and applies them. */
  #fetchOwnAcks(peer: HelloAnswer): void {
    const answers = this.#answers;
    if (answers?.tag === undefined || answers.replication === undefined || peer.qosCopies !== true || peer.qosTag === this.#ownTag) return;
    const tag = answers.tag;
    const done: Promise<void> = (async () => {
      for (;;) {
        const acks = (await this.#link.request(peer.nodeId, { type: 'qos-copy-acks-of', tag })) as CopyAck[];
        if (!Array.isArray(acks) || acks.length === 0) return;
        await this.#acksMeanwhile(acks);
        if (acks.length < RECONCILE_PAGE) return;
      }
    })()
      .catch((err: unknown) => this.#link.peerError(peer.nodeId, 'qos-copy-acks-of', err))
      .finally(() => this.#ownAcks.delete(done));
    this.#ownAcks.add(done);
  }

  /** A peer went down: when it owned messages and no other node shares its store, the connections here get them from the holders of copies. */
  #peerDown(nodeId: string): void {
    this.#pullNotices.down(nodeId);
    const tag = this.#peerTags.get(nodeId);
    this.#peerTags.delete(nodeId);
    if (tag === undefined || tag === this.#ownTag) return;
    this.#again.seen(tag);
    if (this.#link.peers().some((p) => p.qosTag === tag)) return;
    this.#answers?.ownerAway(tag);
  }

  /** A peer came up: when this node holds copies of its messages, or acks kept for it, they are reconciled before anything is pulled from it. */
  #peerUp(peer: HelloAnswer): void {
    this.#pullNotices.up(peer);
    const tag = peer.qosTag;
    if (tag !== undefined) {
      this.#again.seen(tag);
      this.#peerTags.set(peer.nodeId, tag);
    }
    this.#fetchOwnAcks(peer);
    const copies = this.#answers?.copies;
    if (tag === undefined || tag === this.#ownTag || copies === undefined || this.#reconciling.has(peer.nodeId)) return;
    if (!copies.tags().includes(tag)) return;
    const done = this.#reconcile(peer.nodeId, tag)
      .catch((err: unknown) => this.#link.peerError(peer.nodeId, 'qos-copy-acks', err))
      .finally(() => this.#reconciling.delete(peer.nodeId));
    this.#reconciling.set(peer.nodeId, done);
  }

  /** Tells an owner that is back the acks kept for it, then drops the copies of what it no longer holds (acked on its side meanwhile). */
  async #reconcile(nodeId: string, tag: string): Promise<void> {
    const copies = this.#answers!.copies!;
    const link = this.#link;
    for (;;) {
      const acks = copies.acksOf(tag, RECONCILE_PAGE);
      if (acks.length === 0) break;
      await link.request(nodeId, { type: 'qos-copy-acks', acks });
      copies.forgetAcks(acks);
      if (acks.length < RECONCILE_PAGE) break;
    }
    for (let after = ''; ;) {
      const ids = copies.idsOf(tag, after, RECONCILE_PAGE);
      if (ids.length === 0) break;
      const held = new Set((await link.request(nodeId, { type: 'qos-copy-held', ids })) as string[]);
      const gone = ids.filter((id) => !held.has(id));
      if (gone.length > 0) copies.remove([], gone);
      if (ids.length < RECONCILE_PAGE) break;
      after = ids[ids.length - 1]!;
    }
    this.#tags = undefined;
  }

  /** Asks one peer per store other than this node's for its part of an admin listing. */
  async listStores(filter: StoreFilter, limit: number, timeoutMs?: number): Promise<StoreListings> {
    const link = this.#link;
    const ownTag = this.#ownTag;
    const other = (peer: HelloAnswer): boolean => peer.qosTag !== undefined && peer.qosTag !== ownTag;
    const failed = link.reportDown('qos-list', other);
    const tags = new Set<string>();
    const stores: HelloAnswer[] = [];
    for (const peer of link.peers()) {
      if (!other(peer) || tags.has(peer.qosTag!)) continue;
      tags.add(peer.qosTag!);
      stores.push(peer);
    }
    const listings: StoreListing[] = [];
    await Promise.all(
      stores.map(async (peer) => {
        try {
          listings.push((await link.request(peer.nodeId, { type: 'qos-list', filter, limit }, timeoutMs)) as StoreListing);
        } catch (err) {
          failed.push(peer.nodeId);
          link.peerError(peer.nodeId, 'qos-list', err);
        }
      }),
    );
    return { listings, failed };
  }

  /** Forwards a durable send to every peer; resolves to the connections they wrote it to. */
  async forwardSend(send: DurableSend): Promise<number> {
    const { id, kind, keys, event, data, listening } = send;
    this.#pullNotices.sending();
    const { values, failed } = await this.#link.send({ kind, keys, event, data, listening, id });
    if (failed.length > 0) this.#pullNotices.failed(failed);
    let count = 0;
    for (const n of values) count += n;
    return count;
  }

  /** Sends acks of durable messages to the node that owns them (found by the id's tag). */
  async forwardAcks(items: AckItem[], connectionId: string, by: AckedBy): Promise<number> {
    const link = this.#link;
    const byOwner = new Map<string, AckItem[]>();
    const owns = (peer: HelloAnswer): boolean => peer.qosTag !== undefined && items.some((i) => i.messageId.endsWith(peer.qosTag!));
    // An owner that is down keeps its messages pending: they are resent on the next connection (at-least-once).
    link.reportDown('qos-ack', owns);
    const tags = new Set<string>();
    for (const peer of link.peers()) {
      const tag = peer.qosTag;
      // Peers sharing one store (Redis) share its tag: one of them removes the entries for all.
      if (tag === undefined || tags.has(tag)) continue;
      tags.add(tag);
      const own = items.filter((i) => i.messageId.endsWith(tag));
      if (own.length > 0) byOwner.set(peer.nodeId, own);
    }
    let count = 0;
    // Owners that are away: the holders of copies remove them and keep the acks for the owner.
    const absent = items.filter((i) => !tags.has(tagOf(i.messageId)));
    const acks = absent.length === 0 ? Promise.resolve(0) : this.#ackCopies(absent, connectionId, by);
    await Promise.all(
      [...byOwner].map(async ([nodeId, own]) => {
        try {
          count += Number(await link.request(nodeId, { type: 'qos-ack', items: own, connectionId, by }));
        } catch (err) {
          // The owner keeps the message pending: it is resent on the next connection (at-least-once).
          link.peerError(nodeId, 'qos-ack', err);
        }
      }),
    );
    return count + (await acks);
  }

  /** Acks of messages whose owner is away: every node that may hold copies (this one too) removes them and keeps the acks for the owner. */
  async #ackCopies(items: AckItem[], connectionId: string, by: AckedBy): Promise<number> {
    const link = this.#link;
    const keep = { connectionId, by };
    let count = 0;
    try {
      count = this.#answers?.copies?.remove(items, [], keep) ?? 0;
    } catch (err) {
      link.error(err);
    }
    this.#stats.acksKept += count;
    const holders = this.#copyPeers();
    const answers = await Promise.all(
      holders.map(async (peer) => {
        try {
          return Number(await link.request(peer.nodeId, { type: 'qos-copy-remove', items, ids: [], keep }));
        } catch (err) {
          link.peerError(peer.nodeId, 'qos-copy-remove', err);
          return 0;
        }
      }),
    );
    // The same targets removed on several holders count once.
    return Math.max(count, ...answers);
  }

  /** Asks the peers that have a durable store (only those can own messages) what they hold for a connection. */
  async pullPending(request: PendingRequest, peerId?: string): Promise<DurableMessage[][]> {
    const link = this.#link;
    // A peer with this node's own tag shares its store (Redis): what it holds is read here directly.
    const ownTag = this.#ownTag;
    // Copies of an owner that just went away: asked of every node that may hold them.
    const copiesOf = request.copiesOf;
    const isOwner = (peer: HelloAnswer): boolean =>
      peer.qosTag !== undefined &&
      peer.qosTag !== ownTag &&
      (copiesOf === undefined || peer.qosCopies === true) &&
      (peerId === undefined || peer.nodeId === peerId);
    // What an owner that is down holds comes from the holders of copies, or when it is back: the hub pulls from a peer on `peer-up`.
    if (copiesOf === undefined) link.reportDown('qos-pending', isOwner);
    // Peers sharing one store (Redis) share its tag and would answer the same messages: ask one of them.
    const tags = new Set<string>();
    const owners: HelloAnswer[] = [];
    for (const peer of link.peers()) {
      if (!isOwner(peer) || tags.has(peer.qosTag!)) continue;
      tags.add(peer.qosTag!);
      owners.push(peer);
    }
    const lists: DurableMessage[][] = [];
    await Promise.all(
      owners.map(async (peer) => {
        try {
          // An owner that just came back first learns what was acked while it was away.
          await this.#reconciling.get(peer.nodeId);
          lists.push(await this.#pulls.pull(peer.nodeId, request));
        } catch (err) {
          link.peerError(peer.nodeId, 'qos-pending', err);
        }
      }),
    );
    // The copies held here of owners that are away.
    const copies = this.#answers?.copies;
    if (peerId === undefined && copies !== undefined) {
      const absent = this.#absentTags().filter((t) => copiesOf === undefined || t === copiesOf);
      if (absent.length > 0) {
        const copied = copies.pendingFor(request, PENDING_PAGE, absent);
        this.#stats.servedFromCopies += copied.length;
        if (copied.length > 0) lists.push(copied);
      }
    }
    return byOwner(lists);
  }
}
