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

/** A random UUID (v4; the shape the Java client uses for `clientId` and `instanceId`). */
export function randomId(): string {
  // randomUUID only in secure contexts (https, localhost): else from getRandomValues.
  return (
    crypto.randomUUID?.() ??
    '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
      (Number(c) ^ (crypto.getRandomValues(new Uint8Array(1))[0]! & (15 >> (Number(c) / 4)))).toString(16),
    )
  );
}
