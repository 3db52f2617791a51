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

/** Filter of admin listings: every given field must match (a target of the message, or its event). */
export interface StoreFilter {
  userId?: string;
  accessToken?: string;
  tenantId?: string;
  channel?: string;
  /** Only messages sent in listening mode (`listening: true`) for one of these event names (the Java `listeners` filter). */
  listeners?: string[];
}

/** A stored message with the targets it still has (token targets hold the token itself; admin views show hashes). */
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
 * Where durable messages live: SQLite (one file per process, `qos.file`), Redis (shared by
 * every node on the same server and prefix, `qos.redis`), or a store of your own (`qos.store`,
 * e.g. over the app's database: example/postgres-qos-store.ts keeps them in PostgreSQL).
 *
 * The contract, which `storeContract` in `koa-sse-server/testing` checks (run it against
 * your store with any test framework; SQLite, Redis and the PostgreSQL example pass it):
 * - A message has targets (`kind` + `key`). `user` and `token` targets are queues: a target
 *   stays until `remove` (an ack) or expiry. `tenant`, `channel` and `all` targets are a
 *   retained log, read after a resume point until the message expires.
 * - Ids are 26 lowercase hex digits: 12 of the millisecond clock, 6 of a sequence, then the
 *   store's 8-digit `tag`. They sort as strings in the order the store committed the
 *   messages, so that an id is a resume point (`Last-Event-ID`) and `messagesFor`'s `mark`
 *   vouches for every message up to it. A store shared by several processes must mint them
 *   so (e.g. inside the insert's transaction, under a lock held until the commit).
 * - Every promise settles: a store that cannot reach its database rejects (fail fast), it
 *   never hangs. Writes resolve once committed (durable as the database makes them).
 * - `remove`, `delete` and `expire` are atomic per message: when two callers remove a
 *   message's last two targets at once, exactly one is told `last`; each expired message is
 *   answered to one caller only.
 * - A store of one process (`shared: false`) may leave the caps to durable delivery, which
 *   counts for it; a shared store checks them itself with the insert (`ERR_SSE_QUEUE_FULL`).
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
