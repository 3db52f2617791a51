import type { StoredMessage, TargetKind } from './qos-store.js';

/**
 * A message as SQLite answers it, from the store's `messages` table or the copies' `copies`
 * (sqlite-store.ts, copy-store.ts): the columns both tables have, in their SQL names.
 */
export interface MessageRow {
  id: string;
  kind: TargetKind;
  event: string;
  data: string;
  /** 0 or 1. */
  listening: number;
  created_at: number;
  expires_at: number;
}

/** The message a row holds. */
export function messageOfRow(row: MessageRow): StoredMessage {
  return {
    id: row.id,
    kind: row.kind,
    event: row.event,
    data: row.data,
    listening: row.listening === 1,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}
