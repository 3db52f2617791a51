import type { ConnectionInfo } from '../local/connection.js';
import { keyOf, type SseUser } from '../core/user.js';
import type { QueryName } from './messages.js';

/** Merges the answers of several nodes to one query: sets are unioned, users de-duplicated, counts summed. */
export function mergeQuery(name: QueryName, answers: unknown[]): unknown {
  switch (name) {
    case 'userIds':
    case 'accessTokens':
    case 'tenantIds':
    case 'channels':
    case 'userIdsListening':
      return [...new Set(answers.flatMap((a) => (Array.isArray(a) ? (a as string[]) : [])))];
    case 'users': {
      const byId = new Map<string, SseUser>();
      for (const list of answers) for (const user of (list as SseUser[]) ?? []) {
        const id = keyOf(user.id);
        if (id !== undefined && !byId.has(id)) byId.set(id, user);
      }
      return [...byId.values()];
    }
    case 'connectionCount':
      return answers.reduce<number>((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
    case 'isOnline':
      return answers.some(Boolean);
    case 'user':
    case 'connectionById':
      return answers.find((a) => a !== null && a !== undefined) ?? null;
    case 'connections':
      return answers.flatMap((a) => (Array.isArray(a) ? (a as ConnectionInfo[]) : []));
  }
}
