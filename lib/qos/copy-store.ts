import { pendingQuery } from './sqlite-pending-query.js';
import type Database from 'better-sqlite3';
import { isMessageId } from './message-id.js';
import { messageOfRow, type MessageRow } from './sqlite-message-row.js';
import type { AckedBy, AckItem, CopyAck, CopyHolder, CopyItem, DurableMessage, PendingRequest } from './qos-cluster.js';
import { QUEUE_KINDS, type TargetRef } from './qos-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS copies (
  id TEXT PRIMARY KEY,
  tag TEXT NOT NULL,
  kind TEXT NOT NULL,
  event TEXT NOT NULL,
  data TEXT NOT NULL,
  listening INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS copies_tag ON copies (tag, id);
CREATE INDEX IF NOT EXISTS copies_expiry ON copies (expires_at);
CREATE TABLE IF NOT EXISTS copy_targets (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  message_id TEXT NOT NULL,
  PRIMARY KEY (kind, key, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS copy_targets_message ON copy_targets (message_id);
CREATE TABLE IF NOT EXISTS copy_acks (
  message_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  tag TEXT NOT NULL,
  connection_id TEXT NOT NULL,
  by TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (message_id, kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS copy_acks_tag ON copy_acks (tag);
`;

const tagOf = (id: string): string => id.slice(-8);

/**
 * The copies this node holds of other nodes' durable messages (`qos.replication`), in its own
 * SQLite file beside its messages (tables of their own: a wiped disk loses both, a restart
 * keeps both). Ids are the owner's, verbatim: the owner's tag still ends them. Also the acks
 * made while an owner was away (`copy_acks`), kept until the owner is told (or they expire).
 * better-sqlite3 is synchronous: each call is one transaction.
 */
export class CopyStore implements CopyHolder {
  readonly #db: Database.Database;
  readonly #s;

  constructor(db: Database.Database) {
    this.#db = db;
    db.exec(SCHEMA);
    this.#s = {
      insert: db.prepare(
        'INSERT OR IGNORE INTO copies (id, tag, kind, event, data, listening, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      acked: db.prepare('SELECT 1 FROM copy_acks WHERE message_id = ? AND kind = ? AND key = ?'),
      insertTarget: db.prepare('INSERT OR IGNORE INTO copy_targets (kind, key, message_id) VALUES (?, ?, ?)'),
      deleteTarget: db.prepare('DELETE FROM copy_targets WHERE kind = ? AND key = ? AND message_id = ?'),
      remaining: db.prepare('SELECT 1 FROM copy_targets WHERE message_id = ? LIMIT 1'),
      deleteCopy: db.prepare('DELETE FROM copies WHERE id = ?'),
      deleteTargetsOf: db.prepare('DELETE FROM copy_targets WHERE message_id = ?'),
      targetsOf: db.prepare('SELECT kind, key FROM copy_targets WHERE message_id = ?'),
      expiresOf: db.prepare('SELECT expires_at FROM copies WHERE id = ?'),
      keepAck: db.prepare('INSERT OR IGNORE INTO copy_acks (message_id, kind, key, tag, connection_id, by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      acksOf: db.prepare('SELECT message_id, kind, key, connection_id, by FROM copy_acks WHERE tag = ? LIMIT ?'),
      forgetAck: db.prepare('DELETE FROM copy_acks WHERE message_id = ? AND kind = ? AND key = ?'),
      tags: db.prepare('SELECT DISTINCT tag FROM copies'),
      ackTags: db.prepare('SELECT DISTINCT tag FROM copy_acks'),
      idsOf: db.prepare('SELECT id FROM copies WHERE tag = ? AND id > ? ORDER BY id LIMIT ?'),
      pageOf: db.prepare('SELECT * FROM copies WHERE tag = ? AND id > ? AND expires_at > ? ORDER BY id LIMIT ?'),
      expired: db.prepare('SELECT id FROM copies WHERE expires_at <= ? LIMIT 5000'),
      expireAcks: db.prepare('DELETE FROM copy_acks WHERE expires_at <= ?'),
      count: db.prepare('SELECT count(*) AS n FROM copies'),
    };
  }

  /** Keeps copies (a replica's commit). A target acked here while its owner was away is not kept again. Answers how many are held. */
  store(items: readonly CopyItem[]): number {
    const s = this.#s;
    return this.#db.transaction(() => {
      let held = 0;
      for (const m of items) {
        s.insert.run(m.id, tagOf(m.id), m.kind, m.event, m.data, m.listening ? 1 : 0, m.createdAt, m.expiresAt);
        for (const key of m.keys) if (s.acked.get(m.id, m.kind, key) === undefined) s.insertTarget.run(m.kind, key, m.id);
        if (s.remaining.get(m.id) === undefined) s.deleteCopy.run(m.id);
        held++;
      }
      return held;
    })();
  }

  /**
   * Removes targets of copies (their owner removed them: acked, or `ids` cancelled). With
   * `keep` the owner is away: each ack of a target this node held is also kept for it (told
   * when it is back). Answers the targets removed.
   */
  remove(items: readonly AckItem[], ids: readonly string[], keep?: { connectionId: string; by: AckedBy }): number {
    const s = this.#s;
    return this.#db.transaction(() => {
      let removed = 0;
      for (const { messageId, targets } of items) {
        if (!isMessageId(messageId)) continue;
        const copy = keep === undefined ? undefined : (s.expiresOf.get(messageId) as { expires_at: number } | undefined);
        for (const t of targets) {
          if (s.deleteTarget.run(t.kind, t.key, messageId).changes === 0) continue;
          removed++;
          // Only a target this copy had: the owner counts an ack it already had as a duplicate.
          if (copy !== undefined && QUEUE_KINDS.has(t.kind)) {
            s.keepAck.run(messageId, t.kind, t.key, tagOf(messageId), keep!.connectionId, keep!.by, copy.expires_at);
          }
        }
        if (s.remaining.get(messageId) === undefined) s.deleteCopy.run(messageId);
      }
      for (const id of ids) {
        s.deleteTargetsOf.run(id);
        s.deleteCopy.run(id);
      }
      return removed;
    })();
  }

  /** What a connection should get from the copies of owners in `tags` (away): its pending queues, then the logs after its resume point. */
  pendingFor(request: PendingRequest, limit: number, tags: readonly string[], now = Date.now()): DurableMessage[] {
    if (tags.length === 0) return [];
    const { refs, logRefs, lastEventId, events } = request;
    const rows = this.#messagesFor(
      refs.filter((r) => QUEUE_KINDS.has(r.kind)),
      '',
      limit,
      now,
      tags,
      events,
    );
    if (lastEventId !== undefined && isMessageId(lastEventId) && events === undefined) {
      rows.push(
        ...this.#messagesFor(
          logRefs.filter((r) => !QUEUE_KINDS.has(r.kind)),
          lastEventId,
          limit,
          now,
          tags,
          undefined,
        ),
      );
    }
    return rows.map((m) => ({ id: m.id, kind: m.kind, event: m.event, data: m.data, listening: m.listening === 1 }));
  }

  #messagesFor(refs: TargetRef[], afterId: string, limit: number, now: number, tags: readonly string[], events: string[] | undefined): MessageRow[] {
    const query = pendingQuery({ messages: 'copies', targets: 'copy_targets' }, refs, afterId, limit, now, events, tags);
    if (query === undefined) return [];
    const { sql, params } = query;
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      if (this.#statements.size > 256) this.#statements.clear();
      this.#statements.set(sql, (stmt = this.#db.prepare(sql)));
    }
    return stmt.all(...params) as MessageRow[];
  }

  /** Prepared statements of the pull's query, by their SQL (a handful of shapes). */
  readonly #statements = new Map<string, Database.Statement>();

  /** The owners' tags this node holds copies of, or acks for. */
  tags(): string[] {
    const tags = new Set<string>();
    for (const r of this.#s.tags.all() as { tag: string }[]) tags.add(r.tag);
    for (const r of this.#s.ackTags.all() as { tag: string }[]) tags.add(r.tag);
    return [...tags];
  }

  /** Acks kept for the owner of `tag` while it was away (at most `limit`). */
  acksOf(tag: string, limit: number): CopyAck[] {
    return (this.#s.acksOf.all(tag, limit) as { message_id: string; kind: 'user' | 'token'; key: string; connection_id: string; by: AckedBy }[]).map(
      (r) => ({ messageId: r.message_id, kind: r.kind, key: r.key, connectionId: r.connection_id, by: r.by }),
    );
  }

  /** The owner was told these acks. */
  forgetAcks(acks: readonly CopyAck[]): void {
    const s = this.#s;
    this.#db.transaction(() => {
      for (const a of acks) s.forgetAck.run(a.messageId, a.kind, a.key);
    })();
  }

  /** Ids of the copies of `tag` after `afterId`, oldest first, at most `limit`. */
  idsOf(tag: string, afterId: string, limit: number): string[] {
    return (this.#s.idsOf.all(tag, afterId, limit) as { id: string }[]).map((r) => r.id);
  }

  /** Copies of `tag` after `afterId` with their targets, oldest first, at most `limit` (to copy them again). */
  page(tag: string, afterId: string, limit: number): CopyItem[] {
    const s = this.#s;
    return (s.pageOf.all(tag, afterId, Date.now(), limit) as MessageRow[]).map((r) => {
      const targets = s.targetsOf.all(r.id) as TargetRef[];
      return { ...messageOfRow(r), keys: targets.filter((t) => t.kind === r.kind).map((t) => t.key) };
    });
  }

  /** Removes expired copies and acks; answers the copies removed. */
  expire(now = Date.now()): number {
    const s = this.#s;
    return this.#db.transaction(() => {
      s.expireAcks.run(now);
      const ids = (s.expired.all(now) as { id: string }[]).map((r) => r.id);
      for (const id of ids) {
        s.deleteTargetsOf.run(id);
        s.deleteCopy.run(id);
      }
      return ids.length;
    })();
  }

  /** Copies held. */
  count(): number {
    return (this.#s.count.get() as { n: number }).n;
  }
}
