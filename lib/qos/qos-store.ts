import type { TargetKind, TargetRef } from '../core/targets.js';

export type { TargetKind, TargetRef } from '../core/targets.js';

/** Kinds of target that are queues (pending until acknowledged); the others are a retained log. */
export const QUEUE_KINDS: ReadonlySet<TargetKind> = new Set(['user', 'token']);

/** A message as stored. `data` is the payload already serialized (strings verbatim, else JSON). */
export interface StoredMessage {
  id: string;
  kind: TargetKind;
  event: string;
  data: string;
  listening: boolean;
  createdAt: number;
  expiresAt: number;
}

/** A message handed to {@link QosStore.insert}: the store gives it its id. */
export type NewMessage = Omit<StoredMessage, 'id'>;

/**
 * What {@link QosStore.insert} answers: the message with its id, or, for a retry whose
 * idempotency key the store still holds, the first send's id with `duplicate` (nothing stored).
 */
export type InsertedMessage = StoredMessage & { duplicate?: true };

/** A target row removed by an ack or by expiry. */
export interface RemovedTarget extends TargetRef {
  messageId: string;
  /** No target of the message is left: the message itself is gone. */
  last: boolean;
}

/** Filter of admin listings: every given field must match a target of the message. */
export interface StoreFilter {
  userId?: string;
  accessToken?: string;
  tenantId?: string;
  channel?: string;
}

/** A stored message with the targets it still has. */
export interface StoredEntry {
  message: StoredMessage;
  targets: TargetRef[];
}

/** Pending entries of one queue target. */
export interface QueueCount {
  kind: TargetKind;
  key: string;
  n: number;
}

/**
 * Where durable messages live: SQLite (one file per process, `SqliteQosStore`) or Redis
 * (shared by every node on the same server and prefix, `RedisQosStore`). Every method may
 * fail (a Redis store rejects with `ERR_SSE_REDIS_UNAVAILABLE` when Redis is away); none
 * hangs. Ids sort by the order the store accepted the messages in, so that an id is a resume
 * point (`Last-Event-ID`).
 */
export interface QosStore {
  /**
   * 8 hex digits ending every id of this store: the owner of a message is known from its id.
   * Nodes sharing one store share its tag; for them every message is their own.
   */
  readonly tag: string;
  /**
   * Several processes share the store: it checks the caps itself, atomically with the insert
   * (an insert over a cap rejects with `ERR_SSE_QUEUE_FULL`), and counts kept in one process
   * are only that process's view.
   */
  readonly shared: boolean;
  /** Stores a message and its target keys. Resolves, once committed, to the message with its id. */
  insert(message: NewMessage, keys: string[], idempotencyKey?: string): Promise<InsertedMessage>;
  /** Removes targets of messages (acks). Resolves to the rows that existed, once committed. */
  remove(items: { messageId: string; targets: TargetRef[] }[]): Promise<RemovedTarget[]>;
  /**
   * Messages after `afterId` that have a target among `refs` and are not expired, oldest
   * first, at most `limit`; fewer than `limit` means there are no more. With `events`, only
   * listening-mode messages for those events. `mark` is the highest id committed when the
   * read ran: a message whose id is at most `mark` was seen by the read (ids sort in commit
   * order), so a live send of it can be left to the replay that made the read.
   */
  messagesFor(
    refs: TargetRef[],
    afterId: string,
    limit: number,
    now: number,
    events?: string[],
  ): Promise<{ messages: StoredMessage[]; mark: string }>;
  get(id: string): Promise<StoredEntry | undefined>;
  /** Deletes a message and all its targets. Resolves to the targets it had, or undefined if it was gone. */
  delete(id: string): Promise<TargetRef[] | undefined>;
  /** Removes up to `limit` messages whose time is up and answers them with the targets they still had. Each is answered to one caller only. */
  expire(now: number, limit: number): Promise<StoredEntry[]>;
  /** Pending queue entries per target and stored messages in total, to (re)build the in-memory counts. */
  counts(): Promise<{ queues: QueueCount[]; total: number }>;
  /** A page of stored messages matching `filter`, oldest first, with their targets. */
  list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }>;
  /** Calls `listener` whenever the store's connection becomes ready (a Redis store: at start and after every reconnect). */
  onReady?(listener: () => void): void;
  /** Commits what is waiting and lets go of the database or connection. */
  close(): Promise<void>;
}
