/**
 * A multi-map from a string key to the values filed under it. Empty keys are deleted at once
 * so that the key count is the number of distinct live keys (online users, tokens, tenants…)
 * and memory does not grow with keys that came and went.
 *
 * Most keys hold one value (one stream per user id, per token): such a key maps straight to
 * its value, and a Set is made only for the second. A Set of one cost ~150 bytes and ~0.7 µs
 * per stream opened. Values keep insertion order (oldest first) either way.
 */
export class KeyIndex<V extends object> {
  readonly #map = new Map<string, V | Set<V>>();

  add(key: string | undefined, value: V): void {
    if (key === undefined) return;
    const held = this.#map.get(key);
    if (held === undefined) this.#map.set(key, value);
    else if (held instanceof Set) held.add(value);
    else if (held !== value) this.#map.set(key, new Set([held, value]));
  }

  delete(key: string | undefined, value: V): void {
    if (key === undefined) return;
    const held = this.#map.get(key);
    if (held === value) {
      this.#map.delete(key);
    } else if (held instanceof Set && held.delete(value)) {
      if (held.size === 1) this.#map.set(key, held.values().next().value as V);
      else if (held.size === 0) this.#map.delete(key);
    }
  }

  /** The values under `key`, oldest first (live: copy before changing the index while iterating). */
  get(key: string): Iterable<V> | undefined {
    const held = this.#map.get(key);
    return held === undefined || held instanceof Set ? held : [held];
  }

  /** The values under `key` as a new array, oldest first. */
  list(key: string): V[] {
    const held = this.#map.get(key);
    return held === undefined ? [] : held instanceof Set ? [...held] : [held];
  }

  /** How many values are under `key`. */
  count(key: string): number {
    const held = this.#map.get(key);
    return held === undefined ? 0 : held instanceof Set ? held.size : 1;
  }

  has(key: string): boolean {
    return this.#map.has(key);
  }

  keys(): IterableIterator<string> {
    return this.#map.keys();
  }

  get size(): number {
    return this.#map.size;
  }
}
