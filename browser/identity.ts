import { readStorage, writeStorage, type StorageHost } from './storage.js';

/** This browser's id, kept in `localStorage` under the Java client's key `sseClientId`. */
export function resolveClientId(host: StorageHost, given: string | null | undefined): string {
  const id = given || readStorage(host, 'local', 'sseClientId') || randomId();
  writeStorage(host, 'local', 'sseClientId', id);
  return id;
}

/** When this visit began, kept in `sessionStorage` under the Java client's key `sseAccessTimestamp`. */
export function resolveAccessTimestamp(host: StorageHost, given: number | null | undefined): number {
  const stored = Number(readStorage(host, 'session', 'sseAccessTimestamp'));
  const value = given ?? (Number.isFinite(stored) && stored > 0 ? stored : Date.now());
  writeStorage(host, 'session', 'sseAccessTimestamp', String(value));
  return value;
}

/** A random UUID-like id (the shape the Java client uses for `clientId` and `instanceId`). */
export function randomId(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
