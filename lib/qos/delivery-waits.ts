/** How often a wait asks a shared store whether its message is gone (another node may have removed it). */
const POLL_MS = 500;
/** The longest a Node timer holds (~24.8 days); a longer wait ends with the message's expiry instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Waiter {
  resolve: (acknowledged: boolean) => void;
  timer: NodeJS.Timeout | undefined;
  poll: NodeJS.Timeout | undefined;
}

/**
 * Durable sends whose promise waits for delivery (`waitForDelivery`, the Java library's
 * future): one waiter per message id, settled `true` when its last target is done (acknowledged,
 * or written to a client that cannot ack), `false` when it expires, is cancelled, the wait runs
 * out, or the store closes. With a shared store another node may remove the message: then the
 * wait also asks the store, every {@link POLL_MS}, whether it is gone.
 */
export class DeliveryWaits {
  readonly #waiters = new Map<string, Waiter[]>();

  /** Waiting sends. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Waits for `messageId` (registered before anything can deliver it). `timeoutMs`: the longest
   * wait; `gone`: whether the store no longer holds it (asked by the poll, when given).
   */
  wait(messageId: string, timeoutMs: number, gone?: () => Promise<boolean>): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter: Waiter = { resolve, timer: undefined, poll: undefined };
      let list = this.#waiters.get(messageId);
      if (list === undefined) this.#waiters.set(messageId, (list = []));
      list.push(waiter);
      if (timeoutMs <= MAX_TIMER_MS) {
        waiter.timer = setTimeout(() => this.#settle(messageId, waiter, false), timeoutMs);
        waiter.timer.unref();
      }
      if (gone !== undefined) {
        const ask = (): void => {
          waiter.poll = setTimeout(() => {
            gone().then(
              (yes) => (yes ? this.#settle(messageId, waiter, true) : this.#waiters.get(messageId)?.includes(waiter) === true && ask()),
              // The store is away for now: ask again later; the timeout still bounds the wait.
              () => this.#waiters.get(messageId)?.includes(waiter) === true && ask(),
            );
          }, POLL_MS);
          waiter.poll.unref();
        };
        ask();
      }
    });
  }

  /** The message's last target is done (`true`), or it is gone without that (expired, cancelled: `false`). */
  settle(messageId: string, acknowledged: boolean): void {
    const list = this.#waiters.get(messageId);
    if (list === undefined) return;
    for (const waiter of [...list]) this.#settle(messageId, waiter, acknowledged);
  }

  /** Settles every wait `false` (the store closes). */
  settleAll(): void {
    for (const id of [...this.#waiters.keys()]) this.settle(id, false);
  }

  #settle(messageId: string, waiter: Waiter, acknowledged: boolean): void {
    const list = this.#waiters.get(messageId);
    const i = list?.indexOf(waiter) ?? -1;
    if (i < 0) return;
    list!.splice(i, 1);
    if (list!.length === 0) this.#waiters.delete(messageId);
    clearTimeout(waiter.timer);
    clearTimeout(waiter.poll);
    waiter.resolve(acknowledged);
  }
}
