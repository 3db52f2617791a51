import type { TargetKind, TargetRef } from '../core/targets.js';
import type { StoredEntry, StoreFilter } from './qos-store.js';

/** A durable message as it travels: the payload already serialized. */
export interface DurableMessage {
  id: string;
  kind: TargetKind;
  event: string;
  /** Serialized payload (strings verbatim, else JSON). */
  data: string;
  listening: boolean;
}

/** A durable send forwarded to the nodes holding its targets. */
export interface DurableSend extends DurableMessage {
  keys: string[];
}

/** Acknowledgements of one message for some of its queue targets. */
export interface AckItem {
  messageId: string;
  targets: TargetRef[];
}

/** `ack`: the client acknowledged; `write`: written to a client that cannot acknowledge. */
export type AckedBy = 'ack' | 'write';

/** What a connection that opened (or started listening) asks the owners of durable messages for. */
export interface PendingRequest {
  /** Its queues (user, token). */
  refs: TargetRef[];
  /** Its retained logs (all, tenant, channel), read only after `lastEventId`. */
  logRefs: TargetRef[];
  lastEventId?: string;
  /** Only listening-mode messages for these newly listened events. */
  events?: string[];
  /** Only the copies of the messages of the owner with this tag, which just went away (`qos.replication`): its holders answer. */
  copiesOf?: string;
}

/** A durable message as a replica keeps it (`qos.replication`): with its target keys and times. */
export interface CopyItem extends DurableSend {
  createdAt: number;
  expiresAt: number;
}

/** An ack made while the message's owner was away, kept by the holders of copies until the owner is back. */
export interface CopyAck {
  messageId: string;
  kind: 'user' | 'token';
  key: string;
  connectionId: string;
  by: AckedBy;
}

/**
 * The copies a node holds of other nodes' messages (qos/copy-store.ts). Ids are the owners'
 * (their tag ends them), so an owner's copies are found by its tag.
 */
export interface CopyHolder {
  /** Keeps copies (commits them); answers how many are held. */
  store(items: readonly CopyItem[]): number;
  /** Removes copies' targets (acked at the owner) and whole copies (`ids`: cancelled); with `keep`, the owner is away: the acks are kept for it. */
  remove(items: readonly AckItem[], ids: readonly string[], keep?: { connectionId: string; by: AckedBy }): number;
  /** What a connection should get from the copies of the owners in `tags` (away), like {@link DurableAnswers.pendingFor}. */
  pendingFor(request: PendingRequest, limit: number, tags: readonly string[]): DurableMessage[];
  /** The owners' tags held (copies or kept acks). */
  tags(): string[];
  /** Acks kept for the owner of `tag`. */
  acksOf(tag: string, limit: number): CopyAck[];
  /** The owner was told them. */
  forgetAcks(acks: readonly CopyAck[]): void;
  /** Ids of the copies of `tag` after `afterId`, oldest first. */
  idsOf(tag: string, afterId: string, limit: number): string[];
  /** Copies of `tag` after `afterId`, oldest first (to copy them again). */
  page(tag: string, afterId: string, limit: number): CopyItem[];
  /** Copies held. */
  count(): number;
}

/** What an owner does with the acks kept for it while it was away. */
export interface AcksMeanwhile {
  /** Targets removed now. */
  removed: number;
  /** Acks of targets this node had already removed itself: delivered on both sides of a partition (or told twice). */
  already: number;
}

/** Counts of the copies of durable messages (`hub.qos.replicationStats()`), since the node started. */
export interface ReplicationStats {
  /** Copies this node holds of other nodes' messages, now. */
  held: number;
  /** Sends of this node committed on every copy asked for. */
  replicated: number;
  /** Sends of this node that resolved with fewer copies than asked for (`whenShort: 'degrade'`) or were refused (`'fail'`). */
  underReplicated: number;
  /** Messages this node answered from copies, its owner being away. */
  servedFromCopies: number;
  /** Acks of messages whose owner was away, kept for it by this node. */
  acksKept: number;
  /** Acks kept for this node while it was away, told to it: removed now. */
  acksReconciled: number;
  /** Of those, acks of targets already removed here: delivered on both sides (a partition), or told by several holders. */
  duplicates: number;
  /** Copies sent again to another node after a node was gone longer than `rereplicateAfterMs`. */
  rereplicated: number;
}

/**
 * What a node answers its peers about durable messages. Durable delivery hands it to the
 * cluster once ({@link QosCluster.serve}); it is made of the parts below the durable facade
 * (the owner role, the live delivery), so that no object holds one that holds it back.
 */
export interface DurableAnswers {
  /** This node's store tag; undefined for a node without a store (it owns no message). */
  readonly tag: string | undefined;
  /** A peer forwarded a durable send it owns (or, sharing a Redis store, one it sent): written here like one of this node's. Answers the count reached. */
  deliver(send: DurableSend): number;
  /** A peer forwards acks of messages this node owns; answers the entries removed. */
  ack(items: AckItem[], connectionId: string, by: AckedBy): Promise<number>;
  /** What a peer's connection should get from this node (at most `limit`): pending queue messages, then the log after its resume point. */
  pendingFor(request: PendingRequest, limit: number): Promise<DurableMessage[]>;
  /** The first `limit` stored messages of this node's store matching `filter`, and their total (none without a store). */
  list(filter: StoreFilter, limit: number): Promise<StoreListing>;
  /** The copies this node holds of its peers' messages; undefined when it holds none (no SQLite store). */
  readonly copies: CopyHolder | undefined;
  /** Copies of this node's messages on other nodes (`qos.replication`); undefined: none made. */
  readonly replication: { copies: number; rereplicateAfterMs: number } | undefined;
  /** The owner with this tag went away: the connections here get its messages from the holders of their copies. */
  ownerAway(tag: string): void;
  /** A peer that saw this node come up stored durable sends meanwhile that it did not forward here: the connections here pull from it. */
  pullFrom(peerId: string): void;
  /** The same from a peer sharing this node's store (Redis): the connections here read this node's store again, after what they read. */
  readOwnAgain(): void;
  /** Acks of this node's messages made while it was away, kept by the holders of copies: removed now. */
  acksMeanwhile(acks: CopyAck[]): Promise<AcksMeanwhile>;
  /** Which of `ids` (this node's) are still stored here. */
  held(ids: string[]): Promise<string[]>;
  /** This node's stored messages after `afterId`, oldest first, at most `limit` (to copy them again). */
  ownPage(afterId: string, limit: number): Promise<CopyItem[]>;
}

/** One store's part of an admin listing. */
export interface StoreListing {
  total: number;
  items: StoredEntry[];
}

/** The peers' stores' parts of an admin listing: one per store (peers sharing one are asked once), and who failed. */
export interface StoreListings {
  listings: StoreListing[];
  failed: string[];
}

/**
 * What durable delivery needs from a cluster, declared here so that this layer never
 * depends on how nodes talk. A message is owned by the node whose store tag ends its id;
 * acks go back to that owner.
 */
export interface QosCluster {
  /** Writes a durable send to the peers' connections; resolves to how many they wrote it to. */
  forwardSend(send: DurableSend): Promise<number>;
  /** Sends acknowledgements of messages owned by peers to their owners; resolves to entries removed. */
  forwardAcks(items: AckItem[], connectionId: string, by: AckedBy): Promise<number>;
  /**
   * Asks every peer with a durable store (or only `peerId`) what it holds for these targets:
   * one list of messages per peer that answered, oldest first.
   */
  pullPending(request: PendingRequest, peerId?: string): Promise<DurableMessage[][]>;
  /** Answers the peers' durable requests with `answers` from now on (called once, before the cluster starts). */
  serve(answers: DurableAnswers): void;
  /**
   * Asks every peer with a store of another tag than this node's (one per store) for its first
   * `limit` messages matching `filter` (the admin listing), waiting at most `timeoutMs` for each.
   */
  listStores(filter: StoreFilter, limit: number, timeoutMs?: number): Promise<StoreListings>;
  /** Live peers that can hold copies of this node's messages (a SQLite store, another tag). */
  copyHolders(): number;
  /**
   * Commits a copy of a message this node owns on `copies - 1` live peers (by rendezvous
   * hashing of its target), waiting at most `timeoutMs` for each; resolves to the peers that
   * committed it.
   */
  replicate(item: CopyItem, copies: number, timeoutMs?: number): Promise<string[]>;
  /** Tells the holders of copies that targets were removed here (acks) or messages deleted (`ids`); batched, no answer. */
  dropCopies(items: AckItem[], ids: string[]): void;
  /** Counts of the copies (see {@link ReplicationStats}). */
  replicationStats(): ReplicationStats;
  /**
   * Resolves once this node has applied the acks its peers up now kept for it while it was
   * away (asked when each comes up): a replay of its own store waits for it, so that a stream
   * opening on an owner just back does not get what was acknowledged elsewhere meanwhile.
   */
  ownAcksSettled(): Promise<void>;
}
