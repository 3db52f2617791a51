import { pendingQuery } from './sqlite-pending-query.js';
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SseClosedError, SseStoreError } from '../core/errors.js';
import { loadEngine } from '../core/optional-engine.js';

import { CopyStore } from './copy-store.js';
import { MessageIdGenerator } from './message-id.js';
import { messageOfRow, type MessageRow } from './sqlite-message-row.js';
import type {
  InsertedMessage,
  NewMessage,
  QosStore,
  QueueCount,
  RemovedTarget,
  StoredEntry,
  StoreFilter,
  StoredMessage,
  TargetKind,
  TargetRef,
} from './qos-store.js';

type Op =
  | {
      type: 'insert';
      message: InsertedMessage;
      keys: string[];
      idempotencyKey: string | undefined;
      resolve: (message: InsertedMessage) => void;
      reject: (err: unknown) => void;
    }
  | {
      type: 'remove';
      items: { messageId: string; targets: TargetRef[] }[];
      resolve: (removed: RemovedTarget[]) => void;
      reject: (err: unknown) => void;
    };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  event TEXT NOT NULL,
  data TEXT NOT NULL,
  listening INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_expiry ON messages (expires_at);
CREATE TABLE IF NOT EXISTS targets (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  message_id TEXT NOT NULL,
  PRIMARY KEY (kind, key, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS targets_message ON targets (message_id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  message_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

/**
 * The SQLite store of durable delivery: one file, one process. Writes are batched: every
 * insert and ack made in one turn of the event loop is committed in a single transaction
 * (group commit), and each caller's promise resolves only once its write is committed. Reads
 * first commit whatever is waiting, so they always see every accepted send. better-sqlite3 is
 * synchronous: the promises of the {@link QosStore} interface are already settled when
 * returned (reads) or settle at the next commit (writes).
 */
export class SqliteQosStore implements QosStore {
  readonly #db: Database.Database;
  readonly #batch: Op[] = [];
  #scheduled = false;
  #closed = false;
  /** Id of the last message committed: ids are taken in call order and committed in that order, so every id up to it is in. */
  #lastId = '';
  readonly shared = false;
  /**
   * This database's tag: it ends every message id stored here, so that in a cluster the
   * node owning a message is known from its id alone. Kept in the file: it survives restarts.
   */
  readonly tag: string;
  readonly #ids: MessageIdGenerator;
  readonly #s;

  /**
   * Opens (or creates) the store. The file is locked for this process alone: a second
   * process waits up to `lockTimeoutMs` for it (a rolling restart whose old process is still
   * closing), then fails with `ERR_SSE_STORE_LOCKED` — two processes on one file would mint
   * equal message ids and keep diverging counts. With `integrityCheck`, a damaged file fails
   * here with `ERR_SSE_STORE_CORRUPT` instead of on every later ack.
   */
  constructor(file: string, options: { synchronous: 'NORMAL' | 'FULL'; lockTimeoutMs: number; integrityCheck: boolean }) {
    const Sqlite = loadEngine<typeof Database>('better-sqlite3', 'qos.file');
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    let db: Database.Database | undefined;
    try {
      db = new Sqlite(file, { timeout: options.lockTimeoutMs });
      // EXCLUSIVE before WAL: the lock is taken by the first write below and held until close.
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous}`);
      db.exec(SCHEMA);
      if (options.integrityCheck) {
        const rows = db.pragma('quick_check', { simple: false }) as { quick_check: string }[];
        if (rows.length !== 1 || rows[0]!.quick_check !== 'ok') {
          const detail = rows
            .slice(0, 3)
            .map((r) => r.quick_check)
            .join('; ');
          throw new SseStoreError(
            `The durable store ${file} is damaged (${detail}): restore it from a backup or move it away`,
            'ERR_SSE_STORE_CORRUPT',
          );
        }
      }
    } catch (err) {
      db?.close();
      throw storeError(file, err, options.lockTimeoutMs);
    }
    this.#db = db;
    this.#s = {
      insertMessage: db.prepare('INSERT INTO messages (id, kind, event, data, listening, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      insertTarget: db.prepare('INSERT OR IGNORE INTO targets (kind, key, message_id) VALUES (?, ?, ?)'),
      deleteTarget: db.prepare('DELETE FROM targets WHERE kind = ? AND key = ? AND message_id = ?'),
      remaining: db.prepare('SELECT 1 FROM targets WHERE message_id = ? LIMIT 1'),
      deleteMessage: db.prepare('DELETE FROM messages WHERE id = ?'),
      deleteTargetsOf: db.prepare('DELETE FROM targets WHERE message_id = ?'),
      targetsOf: db.prepare('SELECT kind, key FROM targets WHERE message_id = ?'),
      message: db.prepare('SELECT * FROM messages WHERE id = ?'),
      expired: db.prepare('SELECT * FROM messages WHERE expires_at <= ? ORDER BY expires_at LIMIT ?'),
      idempotent: db.prepare('SELECT message_id AS id FROM idempotency WHERE key = ? AND expires_at > ?'),
      keepIdempotent: db.prepare('INSERT OR REPLACE INTO idempotency (key, message_id, expires_at) VALUES (?, ?, ?)'),
      expireIdempotent: db.prepare('DELETE FROM idempotency WHERE expires_at <= ?'),
      queueCounts: db.prepare("SELECT kind, key, count(*) AS n FROM targets WHERE kind IN ('user', 'token') GROUP BY kind, key"),
      total: db.prepare('SELECT count(*) AS n FROM messages'),
    };
    this.tag = this.#readTag();
    this.#ids = new MessageIdGenerator(this.tag);
  }

  #readTag(): string {
    const row = this.#db.prepare("SELECT value FROM meta WHERE name = 'tag'").get() as { value: string } | undefined;
    if (row !== undefined) return row.value;
    const tag = randomBytes(4).toString('hex');
    this.#db.prepare("INSERT INTO meta (name, value) VALUES ('tag', ?)").run(tag);
    return tag;
  }

  // ---- writes (group commit) ---------------------------------------------------------

  /** Stores a message and its target keys. Resolves, once committed, to the message with its id. */
  insert(fresh: NewMessage, keys: string[], idempotencyKey?: string): Promise<InsertedMessage> {
    // The id is taken now, in call order: ids sort as the sends were made.
    const message: InsertedMessage = { id: this.#ids.next(fresh.createdAt), ...fresh };
    return new Promise((resolve, reject) => this.#enqueue({ type: 'insert', message, keys, idempotencyKey, resolve, reject }));
  }

  /** Removes targets of messages (acks). Resolves to the rows that existed, once committed. */
  remove(items: { messageId: string; targets: TargetRef[] }[]): Promise<RemovedTarget[]> {
    return new Promise((resolve, reject) => this.#enqueue({ type: 'remove', items, resolve, reject }));
  }

  #enqueue(op: Op): void {
    if (this.#closed) {
      op.reject(new SseClosedError('The durable queue'));
      return;
    }
    this.#batch.push(op);
    if (!this.#scheduled) {
      this.#scheduled = true;
      // setImmediate, not a microtask: sends made across several awaits of one burst share a commit.
      setImmediate(() => this.flush());
    }
  }

  /** Commits everything waiting, in one transaction. */
  flush(): void {
    this.#scheduled = false;
    if (this.#batch.length === 0) return;
    const ops = this.#batch.splice(0);
    const results: RemovedTarget[][] = [];
    const s = this.#s;
    try {
      this.#db.transaction(() => {
        for (const op of ops) {
          if (op.type === 'insert') {
            const m = op.message;
            const key = op.idempotencyKey;
            if (key !== undefined) {
              // A retry within the key's time to live: nothing stored, the first send's id.
              const first = s.idempotent.get(key, m.createdAt) as { id: string } | undefined;
              if (first !== undefined) {
                op.message = { ...m, id: first.id, duplicate: true };
                continue;
              }
              s.keepIdempotent.run(key, m.id, m.expiresAt);
            }
            s.insertMessage.run(m.id, m.kind, m.event, m.data, m.listening ? 1 : 0, m.createdAt, m.expiresAt);
            for (const key of op.keys) s.insertTarget.run(m.kind, key, m.id);
          } else {
            const removed: RemovedTarget[] = [];
            for (const { messageId, targets } of op.items) {
              const before = removed.length;
              for (const t of targets) {
                if (s.deleteTarget.run(t.kind, t.key, messageId).changes > 0) {
                  removed.push({ kind: t.kind, key: t.key, messageId, last: false });
                }
              }
              if (removed.length > before && s.remaining.get(messageId) === undefined) {
                s.deleteMessage.run(messageId);
                removed[removed.length - 1]!.last = true;
              }
            }
            results.push(removed);
          }
        }
      })();
    } catch (err) {
      for (const op of ops) op.reject(err);
      return;
    }
    let r = 0;
    for (const op of ops) {
      if (op.type === 'insert') {
        if (op.message.duplicate !== true) this.#lastId = op.message.id;
        op.resolve(op.message);
      } else op.resolve(results[r++]!);
    }
  }

  // ---- reads -------------------------------------------------------------------------

  /**
   * Messages after `afterId` that have a target among `refs`, oldest first. For queue
   * targets these are the pending ones; for log targets the retained ones.
   */
  async messagesFor(
    refs: TargetRef[],
    afterId: string,
    limit: number,
    now: number,
    events?: string[],
  ): Promise<{ messages: StoredMessage[]; mark: string }> {
    this.flush();
    return { messages: this.#messagesFor(refs, afterId, limit, now, events), mark: this.#lastId };
  }

  #messagesFor(refs: TargetRef[], afterId: string, limit: number, now: number, events: string[] | undefined): StoredMessage[] {
    const query = pendingQuery({ messages: 'messages', targets: 'targets' }, refs, afterId, limit, now, events);
    if (query === undefined) return [];
    const { sql, params } = query;
    return (this.#statement(sql).all(...params) as MessageRow[]).map(messageOfRow);
  }

  readonly #cache = new Map<string, Database.Statement>();

  /** Prepared statements of the dynamic queries, by their SQL (a handful of shapes). */
  #statement(sql: string): Database.Statement {
    let stmt = this.#cache.get(sql);
    if (stmt === undefined) {
      if (this.#cache.size > 256) this.#cache.clear();
      stmt = this.#db.prepare(sql);
      this.#cache.set(sql, stmt);
    }
    return stmt;
  }

  async get(id: string): Promise<StoredEntry | undefined> {
    this.flush();
    const row = this.#s.message.get(id) as MessageRow | undefined;
    if (row === undefined) return undefined;
    return { message: messageOfRow(row), targets: this.#s.targetsOf.all(id) as TargetRef[] };
  }

  /** Deletes a message and all its targets. Returns the targets it had. */
  async delete(id: string): Promise<TargetRef[] | undefined> {
    this.flush();
    return this.#db.transaction(() => {
      const targets = this.#s.targetsOf.all(id) as TargetRef[];
      const changes = this.#s.deleteMessage.run(id).changes;
      this.#s.deleteTargetsOf.run(id);
      return changes > 0 ? targets : undefined;
    })();
  }

  /** Removes up to `limit` messages whose time is up; answers them with the targets they still had. */
  async expire(now: number, limit: number): Promise<StoredEntry[]> {
    this.flush();
    return this.#db.transaction(() => {
      this.#s.expireIdempotent.run(now);
      const rows = this.#s.expired.all(now, limit) as MessageRow[];
      return rows.map((row) => {
        const targets = this.#s.targetsOf.all(row.id) as TargetRef[];
        this.#s.deleteTargetsOf.run(row.id);
        this.#s.deleteMessage.run(row.id);
        return { message: messageOfRow(row), targets };
      });
    })();
  }

  /** Pending queue entries per target and stored messages in total, to rebuild the in-memory caps at start. */
  async counts(): Promise<{ queues: QueueCount[]; total: number }> {
    this.flush();
    return { queues: this.#s.queueCounts.all() as QueueCount[], total: (this.#s.total.get() as { n: number }).n };
  }

  /** A page of stored messages matching `filter`, oldest first, with their targets. */
  async list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }> {
    this.flush();
    const conds: string[] = [];
    const params: unknown[] = [];
    const add = (kind: TargetKind, key: string | undefined): void => {
      if (key === undefined) return;
      conds.push('EXISTS (SELECT 1 FROM targets t WHERE t.message_id = m.id AND t.kind = ? AND t.key = ?)');
      params.push(kind, key);
    };
    add('user', filter.userId);
    add('token', filter.accessToken);
    add('tenant', filter.tenantId);
    add('channel', filter.channel);
    if (filter.listeners !== undefined) {
      conds.push(filter.listeners.length === 0 ? '0' : `m.listening = 1 AND m.event IN (${filter.listeners.map(() => '?').join(', ')})`);
      params.push(...filter.listeners);
    }
    const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
    const total = (this.#statement(`SELECT count(*) AS n FROM messages m ${where}`).get(...params) as { n: number }).n;
    const rows = this.#statement(`SELECT m.* FROM messages m ${where} ORDER BY m.id LIMIT ? OFFSET ?`).all(...params, limit, offset) as MessageRow[];
    return { total, items: rows.map((row) => ({ message: messageOfRow(row), targets: this.#s.targetsOf.all(row.id) as TargetRef[] })) };
  }

  /** Stored messages after `afterId`, oldest first, at most `limit`, with their targets (to copy them again to a replica). */
  after(afterId: string, limit: number): StoredEntry[] {
    this.flush();
    const rows = this.#statement('SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit) as MessageRow[];
    return rows.map((row) => ({ message: messageOfRow(row), targets: this.#s.targetsOf.all(row.id) as TargetRef[] }));
  }

  /** The copies of peers' messages this node holds (`qos.replication`), in tables of this same file. */
  openCopies(): CopyStore {
    return new CopyStore(this.#db);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#db.close();
  }
}

/** Turns SQLite's answer at open into an error that says what to do. */
function storeError(file: string, err: unknown, lockTimeoutMs: number): unknown {
  if (err instanceof SseStoreError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new SseStoreError(
      `The durable store ${file} is in use by another process (waited ${lockTimeoutMs} ms): give every process its own qos.file`,
      'ERR_SSE_STORE_LOCKED',
      { cause: err },
    );
  }
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') {
    return new SseStoreError(
      `The durable store ${file} is damaged or not a database: restore it from a backup or move it away`,
      'ERR_SSE_STORE_CORRUPT',
      { cause: err },
    );
  }
  return err;
}
