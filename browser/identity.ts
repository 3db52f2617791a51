import { readStorage, writeStorage } from './storage.js';

/** This browser's id, kept in `localStorage` under the Java client's key `sseClientId`. */
export function resolveClientId(given: string | undefined): string {
  const id = given || readStorage('local', 'sseClientId') || randomId();
  writeStorage('local', 'sseClientId', id);
  return id;
}

/** When this visit began, kept in `sessionStorage` under the Java client's key `sseAccessTimestamp`. */
export function resolveAccessTimestamp(given: number | undefined): number {
  const stored = Number(readStorage('session', 'sseAccessTimestamp'));
  const value = given ?? (Number.isFinite(stored) && stored > 0 ? stored : Date.now());
  writeStorage('session', 'sseAccessTimestamp', String(value));
  return value;
}

function randomId(): string {
  if (typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
