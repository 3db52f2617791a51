import type { EventEmitter } from 'node:events';
import type { TargetKind, TargetRef } from '../core/targets.js';
import type { Key } from '../core/user.js';
import type { QosAckedEvent, QosExpiredEvent, QosSendOptions, QosStatus } from './qos-api.js';
import type { AckedBy, AckItem, AcksMeanwhile, CopyAck, CopyHolder, CopyItem, DurableMessage, PendingRequest } from './qos-cluster.js';
import type { StoredEntry, StoreFilter, StoredMessage } from './qos-store.js';

/** Events of a role: what the durable facade re-emits. */
export interface DurableRoleEvents {
  'qos-acked': [event: QosAckedEvent];
  'qos-expired': [event: QosExpiredEvent];
  error: [error: unknown];
}

/** Pages of this node's own store, read by a replay (qos/replay.ts). */
export interface OwnPages {
  /** Whether the store was closed: a replay under way stops. */
  readonly closed: boolean;
  /** Stored messages for `refs` after `cursor`, oldest first; `mark`: the store's highest id when it read. */
  page(refs: TargetRef[], cursor: string, limit: number, events: string[] | undefined): Promise<{ messages: StoredMessage[]; mark: string }>;
}

/**
 * What a node is to durable delivery: the owner of a store ({@link StoreOwner}, the `qos`
 * option) or, in a cluster without one, a relay ({@link Relay}) that owns no message and
 * only delivers and replays what its peers own. The durable facade (qos.ts) talks to one of
 * them instead of asking at each step whether it has a store.
 */
export interface DurableRole extends EventEmitter<DurableRoleEvents> {
  /** Ends every message id this node owns; undefined for a relay. */
  readonly tag: string | undefined;
  readonly hasStore: boolean;
  /** Whether other processes share the store (they may remove its messages); false for a relay. */
  readonly shared: boolean;
  /** This node's store to replay from; undefined for a relay. */
  readonly pages: OwnPages | undefined;
  /**
   * Commits a durable send: `message` is the stored message, absent when there was no target
   * (nothing stored, `id` only). A relay throws `ERR_SSE_QOS_DISABLED`.
   */
  commit(
    kind: TargetKind,
    keys: string[],
    event: string,
    data: unknown,
    options: QosSendOptions | undefined,
  ): Promise<{ id: string; message?: StoredMessage }>;
  /** Removes this node's own acknowledged entries; answers the count removed. */
  removeOwn(items: AckItem[], connectionId: string, by: AckedBy): Promise<number>;
  /** A peer forwards acks of messages this node owns (checked here: they come from the network). */
  ackForwarded(items: AckItem[], connectionId: string, by: AckedBy): Promise<number>;
  /** What a peer's connection should get from this node. */
  pendingFor(request: PendingRequest, limit: number): Promise<DurableMessage[]>;
  status(messageId: string): Promise<QosStatus | undefined>;
  cancel(messageId: string): Promise<boolean>;
  pendingCount(target?: { userId?: Key; accessToken?: string }): number;
  list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }>;
  expireNow(): Promise<number>;
  close(): Promise<void>;
  /** The copies this node holds of its peers' messages (a SQLite store); undefined otherwise. */
  readonly copies: CopyHolder | undefined;
  /** Acks of this node's messages kept by holders of copies while it was away: removed now. */
  acksMeanwhile(acks: CopyAck[]): Promise<AcksMeanwhile>;
  /** Which of `ids` are still stored here. */
  held(ids: string[]): Promise<string[]>;
  /** Stored messages after `afterId`, oldest first, at most `limit`, to copy them again. */
  ownPage(afterId: string, limit: number): Promise<CopyItem[]>;
}
