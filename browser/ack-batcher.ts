/**
 * Collects the ids of processed durable events and acknowledges them in batches: one request
 * per `delayMs` (or per `maxBatch` ids), not one per event. An ack that fails is not retried:
 * the server resends an unacknowledged message and the client acknowledges it again. One
 * refused by the server's rate limit (429) is sent again after its `Retry-After` ({@link later}).
 */
export class AckBatcher {
  #ids: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #enabled = true;

  readonly #send: (ids: string[]) => void;
  readonly #delayMs: number;
  readonly #maxBatch: number;

  constructor(send: (ids: string[]) => void, delayMs = 50, maxBatch = 100) {
    this.#send = send;
    this.#delayMs = delayMs;
    this.#maxBatch = maxBatch;
  }

  add(id: string): void {
    if (!this.#enabled) return;
    this.#ids.push(id);
    if (this.#ids.length >= this.#maxBatch) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), this.#delayMs);
  }

  /** Sends what is collected now. */
  flush(): void {
    this.#clearTimer();
    if (this.#ids.length === 0) return;
    this.#send(this.#ids.splice(0));
  }

  /** Acknowledges `ids` again after `delayMs` (a rate limit's `Retry-After`), before those collected meanwhile. */
  later(ids: string[], delayMs: number): void {
    if (!this.#enabled) return;
    this.#clearTimer();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#ids.unshift(...ids);
      this.flush();
    }, delayMs);
  }

  /** The server has no ack endpoint: stop until {@link enable} (next connection). */
  disable(): void {
    this.#enabled = false;
    this.#ids = [];
    this.#clearTimer();
  }

  enable(): void {
    this.#enabled = true;
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
