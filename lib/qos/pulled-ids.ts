/** Most ids kept per connection; past it the oldest is forgotten (a duplicate is then possible: at-least-once). */
export const PULLED_IDS_MAX = 1000;

/**
 * The ids of the durable messages pulls from peers handed to one connection's writer. A peer
 * answers every pull with what is still pending, and two pulls of one connection can overlap
 * (its node saw the owner come up, and the owner saw its node come up and told it to pull
 * again): what an earlier one already wrote is not written again. Bounded: the oldest id is
 * forgotten first, as the browser client's own list does.
 */
export class PulledIds {
  readonly #ids = new Set<string>();

  /** Keeps `id`; false when it was kept already (the message went to the writer before). */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > PULLED_IDS_MAX) this.#ids.delete(this.#ids.values().next().value as string);
    return true;
  }
}
