import type { ConnectionInfo } from '../core/connection-info.js';
import type { Queries, QueryAnswer, QueryName } from '../core/queries.js';
import { keyOf, type SseUser } from '../core/user.js';

/** One merging function per query, typed by the query map. */
type Mergers = { [N in QueryName]: (answers: Queries[N]['answer'][]) => Queries[N]['answer'] };

/** Distinct strings of all the answers (a peer's malformed answer counts as none). */
function union(answers: string[][]): string[] {
  return [...new Set(answers.flatMap((a) => (Array.isArray(a) ? a : [])))];
}

const MERGERS: Mergers = {
  userIds: union,
  accessTokens: union,
  tenantIds: union,
  channels: union,
  userIdsListening: union,
  connectionIds: union,
  users: (answers) => {
    const byId = new Map<string, SseUser>();
    for (const list of answers) {
      for (const user of Array.isArray(list) ? list : []) {
        const id = keyOf(user.id);
        if (id !== undefined && !byId.has(id)) byId.set(id, user);
      }
    }
    return [...byId.values()];
  },
  connectionCount: (answers) => answers.reduce((sum, n) => sum + (typeof n === 'number' ? n : 0), 0),
  isOnline: (answers) => answers.some(Boolean),
  user: (answers) => answers.find((a) => a !== null && a !== undefined) ?? null,
  connectionById: (answers) => answers.find((a) => a !== null && a !== undefined) ?? null,
  connections: (answers) => answers.flatMap((a): ConnectionInfo[] => (Array.isArray(a) ? a : [])),
  presence: (answers) => {
    // A user with connections on several nodes is one user: their counts are summed.
    const counts = new Map<string, number>();
    for (const list of answers) {
      for (const entry of Array.isArray(list) ? list : []) {
        if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') continue;
        counts.set(entry[0], (counts.get(entry[0]) ?? 0) + entry[1]);
      }
    }
    return [...counts];
  },
  channelsOf: (answers) => answers.find((a) => Array.isArray(a)) ?? null,
};

/** Merges the answers of several nodes to one query: sets are unioned, users de-duplicated, counts summed. */
export function mergeQuery<N extends QueryName>(name: N, answers: QueryAnswer<N>[]): QueryAnswer<N> {
  return (MERGERS[name] as (a: QueryAnswer<N>[]) => QueryAnswer<N>)(answers);
}
