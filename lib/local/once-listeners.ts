import type { Connection } from './connection.js';

/** What a one-shot listener waits for: a user id, an access token or a channel. */
export type OnceListenerKind = 'user' | 'token' | 'channel';

/** The most one-shot listeners one registry keeps waiting. */
export const MAX_ONCE_LISTENERS = 10_000;

/**
 * One-shot listeners by user, token or channel (the Java `addConnectListener(userId, consumer)`):
 * each is taken at the first connection that matches it, and called once. Bounded: past
 * `max` waiting listeners an addition throws instead of growing memory for a user who never comes.
 */
/** A waiting listener; `channel`: only a connection in that channel (fixed or joined at connect) takes it. */
interface Held<F> {
  listener: F;
  channel: string | undefined;
}

export class OnceListeners<F> {
  readonly #byKey = new Map<string, Set<Held<F>>>();
  readonly #max: number;
  #size = 0;

  constructor(max = MAX_ONCE_LISTENERS) {
    this.#max = max;
  }

  /** Listeners waiting. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds a listener for `kind` + `key` (and, given `channel`, only for a connection in that
   * channel: the Java `addConnectListener(accessToken, channel, …)`); answers a function that
   * removes it if it has not run.
   * @throws RangeError when `max` listeners are already waiting.
   */
  add(kind: OnceListenerKind, key: string, listener: F, channel?: string): () => void {
    if (this.#size >= this.#max) throw new RangeError(`At most ${this.#max} one-shot listeners may wait at once`);
    const k = `${kind}:${key}`;
    let set = this.#byKey.get(k);
    if (set === undefined) this.#byKey.set(k, (set = new Set()));
    // A wrapper object: the same function added twice is two listeners, each called once.
    const held: Held<F> = { listener, channel };
    set.add(held);
    this.#size++;
    return () => {
      const current = this.#byKey.get(k);
      if (current?.delete(held) !== true) return;
      this.#size--;
      if (current.size === 0) this.#byKey.delete(k);
    };
  }

  /** Removes and answers the listeners this connection matches (its user, token and channel, and a listener's own channel). */
  take(conn: Connection): F[] {
    if (this.#size === 0) return [];
    const out: F[] = [];
    for (const k of [
      conn.userId && `user:${conn.userId}`,
      conn.accessToken && `token:${conn.accessToken}`,
      conn.channel && `channel:${conn.channel}`,
    ]) {
      if (!k) continue;
      const set = this.#byKey.get(k);
      if (set === undefined) continue;
      for (const held of set) {
        // One for another channel waits for its own pair.
        if (held.channel !== undefined && held.channel !== conn.channel && !conn.channels.includes(held.channel)) continue;
        set.delete(held);
        this.#size--;
        out.push(held.listener);
      }
      if (set.size === 0) this.#byKey.delete(k);
    }
    return out;
  }
}
