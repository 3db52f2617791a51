/**
 * The ids of the most recent durable events, to drop a redelivered one (the server resends
 * what was not acknowledged; a resume can overlap what was already seen). Bounded: the
 * oldest id is forgotten first.
 */
export class RecentIds {
  readonly #ids = new Set<string>();

  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  add(id: string): void {
    this.#ids.add(id);
    if (this.#ids.size > this.#limit) this.#ids.delete(this.#ids.values().next().value as string);
  }

  clear(): void {
    this.#ids.clear();
  }
}
