// An example durable store over PostgreSQL (node-postgres, `pg`): bring your own database for
// durable delivery (`qos: { store }`). Shared: every node of a cluster may use the same
// database and tables, like the Redis store; any node drains a reconnecting user's queue and
// an ack through any node removes the entry. It passes the store contract
// (`koa-sse-server/testing`), run against a real PostgreSQL server in
// test/store-contract.test.ts. Copy it and adapt it: it is an example, not a supported engine.
//
// How it keeps the contract:
// - Ids are minted inside the insert's transaction under an advisory lock held until the
//   commit: ids sort in commit order, so a read's `mark` (the last id minted, read in the same
//   snapshot as the messages) vouches for every message up to it.
// - The caps are checked in the same transaction (the store is shared: durable delivery leaves
//   them to it).
// - A remove, a delete and an expiry lock the message's row first (`FOR UPDATE`, expiry with
//   `SKIP LOCKED`): two nodes acking a message's last two targets at once see exactly one
//   "last", and each expired message is answered to one node only.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  SseQueueFullError,
  type NewMessage,
  type QosStore,
  type QueueCount,
  type RemovedTarget,
  type StoredEntry,
  type StoredMessage,
  type StoreFilter,
  type TargetKind,
  type TargetRef,
} from '../lib/index.js';

/** Options of {@link PostgresQosStore.open}. */
export interface PostgresQosStoreOptions {
  /** A `pg.Pool` of the app's (left open at close), or a connection string (a pool of its own, ended at close). */
  pool: pg.Pool | string;
  /** Prefix of the table names (letters, digits, `_`). Default `sse_qos`. */
  table?: string;
  /** Most pending messages per user or token: an insert past it rejects with `ERR_SSE_QUEUE_FULL`. Default `10000`. */
  maxPendingPerTarget?: number;
  /** Most stored messages in total. Default `1000000`. */
  maxMessages?: number;
}

interface Row {
  id: string;
  kind: TargetKind;
  event: string;
  data: string;
  listening: boolean;
  created_at: string;
  expires_at: string;
}

/** Durable messages in PostgreSQL: see the file's head comment. Open it with {@link PostgresQosStore.open}. */
export class PostgresQosStore implements QosStore {
  readonly shared = true;
  readonly tag: string;
  readonly #pool: pg.Pool;
  readonly #ownPool: boolean;
  readonly #t: { state: string; messages: string; targets: string };
  readonly #lock: number;
  readonly #maxPerTarget: number;
  readonly #maxMessages: number;
  #closed = false;

  private constructor(pool: pg.Pool, ownPool: boolean, tag: string, prefix: string, options: PostgresQosStoreOptions) {
    this.#pool = pool;
    this.#ownPool = ownPool;
    this.tag = tag;
    this.#t = {
      state: pg.escapeIdentifier(`${prefix}_state`),
      messages: pg.escapeIdentifier(`${prefix}_messages`),
      targets: pg.escapeIdentifier(`${prefix}_targets`),
    };
    this.#lock = lockKey(prefix);
    this.#maxPerTarget = options.maxPendingPerTarget ?? 10_000;
    this.#maxMessages = options.maxMessages ?? 1_000_000;
  }

  /** Creates the tables when missing, reads (or makes) the store's tag, and answers the store. */
  static async open(options: PostgresQosStoreOptions): Promise<PostgresQosStore> {
    const prefix = options.table ?? 'sse_qos';
    if (!/^[a-z_][a-z0-9_]{0,40}$/i.test(prefix)) throw new TypeError('table must be letters, digits and _ (at most 41)');
    const ownPool = typeof options.pool === 'string';
    const pool = typeof options.pool === 'string' ? new pg.Pool({ connectionString: options.pool, max: 10 }) : options.pool;
    // An idle connection that the server ended (a restart): the pool drops it and opens another
    // when needed; queries in flight reject on their own. Unheard, the event would end the process.
    if (ownPool) pool.on('error', () => undefined);
    const state = pg.escapeIdentifier(`${prefix}_state`);
    const messages = pg.escapeIdentifier(`${prefix}_messages`);
    const targets = pg.escapeIdentifier(`${prefix}_targets`);
    try {
      const tag = await transaction(pool, async (c) => {
        // Two nodes starting at once: one creates, the other waits for it.
        await c.query('SELECT pg_advisory_xact_lock($1)', [lockKey(prefix)]);
        await c.query(`
          CREATE TABLE IF NOT EXISTS ${state} (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            tag text NOT NULL, ms bigint NOT NULL DEFAULT 0, seq integer NOT NULL DEFAULT 0,
            last_id text NOT NULL DEFAULT '', total bigint NOT NULL DEFAULT 0);
          CREATE TABLE IF NOT EXISTS ${messages} (
            id text PRIMARY KEY, kind text NOT NULL, event text NOT NULL, data text NOT NULL,
            listening boolean NOT NULL, created_at bigint NOT NULL, expires_at bigint NOT NULL);
          CREATE INDEX IF NOT EXISTS ${pg.escapeIdentifier(`${prefix}_expiry`)} ON ${messages} (expires_at);
          CREATE TABLE IF NOT EXISTS ${targets} (
            kind text NOT NULL, key text NOT NULL, message_id text NOT NULL,
            PRIMARY KEY (kind, key, message_id));
          CREATE INDEX IF NOT EXISTS ${pg.escapeIdentifier(`${prefix}_targets_message`)} ON ${targets} (message_id);`);
        await c.query(`INSERT INTO ${state} (tag) VALUES ($1) ON CONFLICT DO NOTHING`, [randomBytes(4).toString('hex')]);
        return ((await c.query(`SELECT tag FROM ${state}`)).rows[0] as { tag: string }).tag;
      });
      return new PostgresQosStore(pool, ownPool, tag, prefix, options);
    } catch (err) {
      if (ownPool) await pool.end();
      throw err;
    }
  }

  async insert(message: NewMessage, keys: string[]): Promise<StoredMessage> {
    const { state, messages, targets } = this.#t;
    return transaction(this.#pool, async (c) => {
      // Held until the commit: ids are minted, and committed, one insert at a time.
      await c.query('SELECT pg_advisory_xact_lock($1)', [this.#lock]);
      const total = Number(((await c.query(`SELECT total FROM ${state}`)).rows[0] as { total: string }).total);
      if (total >= this.#maxMessages) throw new SseQueueFullError(`The durable store holds its maximum of ${this.#maxMessages} messages`);
      if (message.kind === 'user' || message.kind === 'token') {
        const full = await c.query(`SELECT key FROM ${targets} WHERE kind = $1 AND key = ANY($2) GROUP BY key HAVING count(*) >= $3 LIMIT 1`, [
          message.kind,
          keys,
          this.#maxPerTarget,
        ]);
        if (full.rowCount !== 0) throw new SseQueueFullError(`At most ${this.#maxPerTarget} pending messages per target`);
      }
      // The database's clock, never back: 12 hex digits of ms, 6 of a sequence, then the tag.
      const minted = await c.query(
        `UPDATE ${state} SET
           seq = CASE WHEN n.now > ms THEN 0 WHEN seq >= 16777215 THEN 0 ELSE seq + 1 END,
           ms = CASE WHEN n.now > ms THEN n.now WHEN seq >= 16777215 THEN ms + 1 ELSE ms END,
           total = total + 1
         FROM (SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now) n
         RETURNING ms, seq`,
      );
      const { ms, seq } = minted.rows[0] as { ms: string; seq: number };
      const id = BigInt(ms).toString(16).padStart(12, '0') + seq.toString(16).padStart(6, '0') + this.tag;
      await c.query(`UPDATE ${state} SET last_id = $1`, [id]);
      await c.query(`INSERT INTO ${messages} (id, kind, event, data, listening, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
        id,
        message.kind,
        message.event,
        message.data,
        message.listening,
        message.createdAt,
        message.expiresAt,
      ]);
      await c.query(`INSERT INTO ${targets} (kind, key, message_id) SELECT $1, k, $2 FROM unnest($3::text[]) AS k ON CONFLICT DO NOTHING`, [
        message.kind,
        id,
        keys,
      ]);
      return { id, ...message };
    });
  }

  async remove(items: { messageId: string; targets: TargetRef[] }[]): Promise<RemovedTarget[]> {
    const { state, messages, targets } = this.#t;
    return transaction(this.#pool, async (c) => {
      const removed: RemovedTarget[] = [];
      let done = 0;
      // Rows are locked in id order, and the total last: two removes never wait for each other in a circle.
      for (const { messageId, targets: refs } of [...items].sort((a, b) => (a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0))) {
        // The message's row first: removes of its targets run one after the other.
        if ((await c.query(`SELECT 1 FROM ${messages} WHERE id = $1 FOR UPDATE`, [messageId])).rowCount === 0) continue;
        const before = removed.length;
        for (const t of refs) {
          const r = await c.query(`DELETE FROM ${targets} WHERE kind = $1 AND key = $2 AND message_id = $3`, [t.kind, t.key, messageId]);
          if (r.rowCount !== 0) removed.push({ kind: t.kind, key: t.key, messageId, last: false });
        }
        if (removed.length === before) continue;
        if ((await c.query(`SELECT 1 FROM ${targets} WHERE message_id = $1 LIMIT 1`, [messageId])).rowCount === 0) {
          await c.query(`DELETE FROM ${messages} WHERE id = $1`, [messageId]);
          removed[removed.length - 1]!.last = true;
          done++;
        }
      }
      if (done > 0) await c.query(`UPDATE ${state} SET total = total - $1`, [done]);
      return removed;
    });
  }

  async messagesFor(
    refs: TargetRef[],
    afterId: string,
    limit: number,
    now: number,
    events?: string[],
  ): Promise<{ messages: StoredMessage[]; mark: string }> {
    const { state, messages, targets } = this.#t;
    // One snapshot for the mark and the page: every id up to the mark is in the page's view.
    return transaction(
      this.#pool,
      async (c) => {
        const mark = ((await c.query(`SELECT last_id FROM ${state}`)).rows[0] as { last_id: string }).last_id;
        if (refs.length === 0 || events?.length === 0) return { messages: [], mark };
        const rows = await c.query(
          `SELECT m.* FROM ${messages} m
           WHERE m.id > $1 AND m.expires_at > $2
             AND EXISTS (SELECT 1 FROM ${targets} t, unnest($3::text[], $4::text[]) AS r(kind, key)
                         WHERE t.message_id = m.id AND t.kind = r.kind AND t.key = r.key)
             AND ($5::text[] IS NULL OR (m.listening AND m.event = ANY($5)))
           ORDER BY m.id LIMIT $6`,
          [afterId, now, refs.map((r) => r.kind), refs.map((r) => r.key), events ?? null, limit],
        );
        return { messages: (rows.rows as Row[]).map(toMessage), mark };
      },
      'REPEATABLE READ READ ONLY',
    );
  }

  async get(id: string): Promise<StoredEntry | undefined> {
    return transaction(
      this.#pool,
      async (c) => {
        const row = (await c.query(`SELECT * FROM ${this.#t.messages} WHERE id = $1`, [id])).rows[0] as Row | undefined;
        if (row === undefined) return undefined;
        return { message: toMessage(row), targets: await this.#targetsOf(c, id) };
      },
      'REPEATABLE READ READ ONLY',
    );
  }

  async delete(id: string): Promise<TargetRef[] | undefined> {
    const { state, messages, targets } = this.#t;
    return transaction(this.#pool, async (c) => {
      if ((await c.query(`SELECT 1 FROM ${messages} WHERE id = $1 FOR UPDATE`, [id])).rowCount === 0) return undefined;
      const had = await this.#targetsOf(c, id);
      await c.query(`DELETE FROM ${targets} WHERE message_id = $1`, [id]);
      await c.query(`DELETE FROM ${messages} WHERE id = $1`, [id]);
      await c.query(`UPDATE ${state} SET total = total - 1`);
      return had;
    });
  }

  async expire(now: number, limit: number): Promise<StoredEntry[]> {
    const { state, messages, targets } = this.#t;
    return transaction(this.#pool, async (c) => {
      // SKIP LOCKED: another node expiring at the same time takes other messages.
      const rows = (
        await c.query(`SELECT * FROM ${messages} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, [now, limit])
      ).rows as Row[];
      if (rows.length === 0) return [];
      const ids = rows.map((r) => r.id);
      const refs = (await c.query(`DELETE FROM ${targets} WHERE message_id = ANY($1) RETURNING kind, key, message_id`, [ids])).rows as {
        kind: TargetKind;
        key: string;
        message_id: string;
      }[];
      await c.query(`DELETE FROM ${messages} WHERE id = ANY($1)`, [ids]);
      await c.query(`UPDATE ${state} SET total = total - $1`, [rows.length]);
      return rows.map((row) => ({
        message: toMessage(row),
        targets: refs.filter((r) => r.message_id === row.id).map((r) => ({ kind: r.kind, key: r.key })),
      }));
    });
  }

  async counts(): Promise<{ queues: QueueCount[]; total: number }> {
    const { state, targets } = this.#t;
    return transaction(
      this.#pool,
      async (c) => {
        const total = Number(((await c.query(`SELECT total FROM ${state}`)).rows[0] as { total: string }).total);
        const queues = (await c.query(`SELECT kind, key, count(*)::integer AS n FROM ${targets} WHERE kind IN ('user', 'token') GROUP BY kind, key`))
          .rows as QueueCount[];
        return { queues, total };
      },
      'REPEATABLE READ READ ONLY',
    );
  }

  async list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }> {
    const { messages, targets } = this.#t;
    const conds: string[] = [];
    const params: unknown[] = [];
    const add = (kind: TargetKind, key: string | undefined): void => {
      if (key === undefined) return;
      params.push(kind, key);
      conds.push(`EXISTS (SELECT 1 FROM ${targets} t WHERE t.message_id = m.id AND t.kind = $${params.length - 1} AND t.key = $${params.length})`);
    };
    add('user', filter.userId);
    add('token', filter.accessToken);
    add('tenant', filter.tenantId);
    add('channel', filter.channel);
    if (filter.listeners !== undefined) {
      params.push(filter.listeners);
      conds.push(`m.listening AND m.event = ANY($${params.length})`);
    }
    const where = conds.length === 0 ? '' : `WHERE ${conds.join(' AND ')}`;
    return transaction(
      this.#pool,
      async (c) => {
        const total = Number(((await c.query(`SELECT count(*) AS n FROM ${messages} m ${where}`, params)).rows[0] as { n: string }).n);
        const rows = (
          await c.query(`SELECT m.* FROM ${messages} m ${where} ORDER BY m.id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`, [
            ...params,
            limit,
            offset,
          ])
        ).rows as Row[];
        const items: StoredEntry[] = [];
        for (const row of rows) items.push({ message: toMessage(row), targets: await this.#targetsOf(c, row.id) });
        return { total, items };
      },
      'REPEATABLE READ READ ONLY',
    );
  }

  /** Ends the pool it opened from a connection string; an app's own pool stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownPool) await this.#pool.end();
  }

  async #targetsOf(c: pg.PoolClient, id: string): Promise<TargetRef[]> {
    return (await c.query(`SELECT kind, key FROM ${this.#t.targets} WHERE message_id = $1 ORDER BY kind, key`, [id])).rows as TargetRef[];
  }
}

/** Runs `work` in one transaction on one pooled connection; rolls back when it throws. */
async function transaction<T>(pool: pg.Pool, work: (c: pg.PoolClient) => Promise<T>, mode = 'READ COMMITTED'): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query(`BEGIN ISOLATION LEVEL ${mode}`);
    const result = await work(c);
    await c.query('COMMIT');
    return result;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** The advisory lock of one store (its table prefix): a 32-bit key. */
function lockKey(prefix: string): number {
  let h = 0;
  for (const ch of `koa-sse-server:${prefix}`) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
  return h;
}

function toMessage(row: Row): StoredMessage {
  return {
    id: row.id,
    kind: row.kind,
    event: row.event,
    data: row.data,
    listening: row.listening,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
}
