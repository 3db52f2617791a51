import type { Connection } from './connection.js';

/**
 * Online-time values (`setDuration*`) for users and tokens that were offline when they were
 * set: given to their next connection, once. Bounded: past `max` the oldest is dropped.
 */
export class PendingDurations {
  readonly #map = new Map<string, number>();
  readonly #max: number;

  constructor(max = 10_000) {
    this.#max = max;
  }

  set(kind: 'user' | 'token', key: string, seconds: number): void {
    const k = `${kind}:${key}`;
    this.#map.delete(k); // re-inserted as the newest
    this.#map.set(k, seconds);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  /** Drops the value kept for a user or token. Answers whether there was one. */
  delete(kind: 'user' | 'token', key: string): boolean {
    return this.#map.delete(`${kind}:${key}`);
  }

  /** The value waiting for this connection's user (else its token), removed once taken, with whose it was. */
  take(conn: Connection): { kind: 'user' | 'token'; key: string; seconds: number } | undefined {
    // Almost always empty: no key strings per connect then.
    if (this.#map.size === 0) return undefined;
    for (const [kind, key] of [
      ['user', conn.userId],
      ['token', conn.accessToken],
    ] as const) {
      if (key === undefined) continue;
      const k = `${kind}:${key}`;
      const seconds = this.#map.get(k);
      if (seconds !== undefined) {
        this.#map.delete(k);
        return { kind, key, seconds };
      }
    }
    return undefined;
  }
}
