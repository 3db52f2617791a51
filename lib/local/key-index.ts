/**
 * A multi-map from a string key to the set of values filed under it. Empty sets are
 * deleted at once so that the key count is the number of distinct live keys (online users,
 * tokens, tenants…) and memory does not grow with keys that came and went.
 */
export class KeyIndex<V> {
  readonly #map = new Map<string, Set<V>>();

  add(key: string | undefined, value: V): void {
    if (key === undefined) return;
    let set = this.#map.get(key);
    if (set === undefined) {
      set = new Set();
      this.#map.set(key, set);
    }
    set.add(value);
  }

  delete(key: string | undefined, value: V): void {
    if (key === undefined) return;
    const set = this.#map.get(key);
    if (set === undefined) return;
    set.delete(value);
    if (set.size === 0) this.#map.delete(key);
  }

  get(key: string): ReadonlySet<V> | undefined {
    return this.#map.get(key);
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
