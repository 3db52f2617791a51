/**
 * Exponential backoff with jitter: attempt n waits a random time in [cap/2, cap], where
 * cap = min(max, base * 2^n). The jitter spreads a crowd of clients that lost the same
 * server, so they do not all come back in the same millisecond.
 */
export class Backoff {
  #attempt = 0;

  readonly #base: () => number;
  readonly #max: () => number;

  constructor(base: () => number, max: () => number) {
    this.#base = base;
    this.#max = max;
  }

  /** The delay before the next attempt, in ms; each call doubles the cap. */
  next(): number {
    const cap = Math.min(this.#max(), this.#base() * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(cap / 2 + (Math.random() * cap) / 2);
  }

  /** Back to the first delay (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}
