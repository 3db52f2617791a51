/**
 * Collects the ids of processed durable events and acknowledges them in batches: one request
 * per `delayMs` (or per `maxBatch` ids), not one per event. An ack that fails is not retried:
 * the server resends an unacknowledged message and the client acknowledges it again.
 */
export class AckBatcher {
  #ids: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #enabled = true;

  constructor(
    private readonly send: (ids: string[]) => void,
    private readonly delayMs = 50,
    private readonly maxBatch = 100,
  ) {}

  add(id: string): void {
    if (!this.#enabled) return;
    this.#ids.push(id);
    if (this.#ids.length >= this.maxBatch) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Sends what is collected now. */
  flush(): void {
    this.#clearTimer();
    if (this.#ids.length === 0) return;
    this.send(this.#ids.splice(0));
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
