/** One call waiting in a {@link TickBatch}. */
export interface Batched<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/**
 * Collects the calls made in one turn of the event loop and runs them together: one round
 * trip to the store for all of them (group commit). `run` gets the waiting calls in order
 * and settles each. A batch is also run at once when it reaches `maxItems` or `maxBytes`
 * (as `sizeOf` counts them), so that one run stays short.
 */
export class TickBatch<T, R> {
  readonly #run: (batch: Batched<T, R>[]) => void;
  readonly #sizeOf: (item: T) => number;
  readonly #maxItems: number;
  readonly #maxBytes: number;
  #waiting: Batched<T, R>[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(run: (batch: Batched<T, R>[]) => void, limits: { maxItems: number; maxBytes: number; sizeOf: (item: T) => number }) {
    this.#run = run;
    this.#maxItems = limits.maxItems;
    this.#maxBytes = limits.maxBytes;
    this.#sizeOf = limits.sizeOf;
  }

  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      this.#bytes += this.#sizeOf(item);
      if (this.#waiting.length >= this.#maxItems || this.#bytes >= this.#maxBytes) this.flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate, not a microtask: calls made across several awaits of one burst share a run.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs what is waiting now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#waiting.length === 0) return;
    const batch = this.#waiting;
    this.#waiting = [];
    this.#bytes = 0;
    this.#run(batch);
  }
}
