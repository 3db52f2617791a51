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

  /** The value waiting for this connection's user (else its token), removed once taken. */
  take(conn: Connection): number | undefined {
    // Almost always empty: no key strings per connect then.
    if (this.#map.size === 0) return undefined;
    for (const k of [conn.userId && `user:${conn.userId}`, conn.accessToken && `token:${conn.accessToken}`]) {
      if (!k) continue;
      const seconds = this.#map.get(k);
      if (seconds !== undefined) {
        this.#map.delete(k);
        return seconds;
      }
    }
    return undefined;
  }
}
