import type { TargetRef } from './qos-store.js';

/** The tables a pending query reads: a store's own messages, or the copies a node holds of others'. */
export interface PendingTables {
  messages: 'messages' | 'copies';
  targets: 'targets' | 'copy_targets';
}

/**
 * The SQL of "messages after `afterId` with a target among `refs`, not expired, oldest
 * first" for SQLite, shared by the store (sqlite-store.ts) and the copies it holds of other
 * nodes (copy-store.ts): with `events`, only listening-mode messages for those events; with
 * `tags`, only messages of those owners. Undefined when nothing can match.
 */
export function pendingQuery(
  tables: PendingTables,
  refs: TargetRef[],
  afterId: string,
  limit: number,
  now: number,
  events: string[] | undefined,
  tags?: readonly string[],
): { sql: string; params: unknown[] } | undefined {
  if (refs.length === 0 || events?.length === 0) return undefined;
  const where = refs.map(() => '(t.kind = ? AND t.key = ?)').join(' OR ');
  const params: unknown[] = refs.flatMap((r) => [r.kind, r.key]);
  params.push(afterId, now);
  let extra = '';
  if (tags !== undefined) {
    extra += ` AND m.tag IN (${tags.map(() => '?').join(', ')})`;
    params.push(...tags);
  }
  if (events !== undefined) {
    extra += ` AND m.listening = 1 AND m.event IN (${events.map(() => '?').join(', ')})`;
    params.push(...events);
  }
  params.push(limit);
  const sql =
    `SELECT DISTINCT m.* FROM ${tables.targets} t JOIN ${tables.messages} m ON m.id = t.message_id ` +
    `WHERE (${where}) AND t.message_id > ? AND m.expires_at > ?${extra} ORDER BY m.id LIMIT ?`;
  return { sql, params };
}
