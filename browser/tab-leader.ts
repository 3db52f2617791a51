/**
 * The Web Locks a group of tabs uses. One lock per group elects the leader: the tab holding it
 * owns the stream; the others wait in the lock's queue, so when the leader's tab closes (or
 * crashes) the browser hands the lock, and the stream, to the next one. Each tab also holds a
 * lock of its own for its life, so that the leader learns of a tab gone without a word (its lock
 * becomes free) and stops waiting for it to acknowledge.
 */
export class TabLocks {
  readonly #abort = new AbortController();
  #resign: (() => void) | undefined;

  readonly #locks: LockManager;
  readonly #group: string;
  readonly #self: string;

  constructor(locks: LockManager, group: string, self: string) {
    this.#locks = locks;
    this.#group = group;
    this.#self = self;
  }

  /** Holds this tab's own lock until {@link stop}; resolves once it is held. */
  holdOwn(): Promise<void> {
    return new Promise((held) => {
      this.#locks
        .request(this.#tabLock(this.#self), { signal: this.#abort.signal }, () => {
          held();
          return new Promise<void>((release) => this.#abort.signal.addEventListener('abort', () => release()));
        })
        .catch(() => undefined);
    });
  }

  /** Waits for the leader lock; `elected` runs once it is held, until {@link stop}. */
  campaign(elected: () => void): void {
    this.#locks
      .request(`sse-leader:${this.#group}`, { signal: this.#abort.signal }, () => {
        if (this.#abort.signal.aborted) return undefined;
        elected();
        return new Promise<void>((release) => {
          this.#resign = release;
          this.#abort.signal.addEventListener('abort', () => release());
        });
      })
      .catch(() => undefined);
  }

  /** Calls `gone` once the tab `id` no longer holds its lock (closed, crashed), unless {@link stop} first. */
  watch(id: string, gone: () => void): AbortController {
    const watch = new AbortController();
    const onStop = (): void => watch.abort();
    this.#abort.signal.addEventListener('abort', onStop);
    this.#locks
      .request(this.#tabLock(id), { signal: watch.signal }, () => {
        this.#abort.signal.removeEventListener('abort', onStop);
        if (!watch.signal.aborted) gone();
        return undefined;
      })
      .catch(() => this.#abort.signal.removeEventListener('abort', onStop));
    return watch;
  }

  /** Releases every lock held and gives up every one waited for. */
  stop(): void {
    this.#abort.abort();
    this.#resign?.();
  }

  #tabLock(id: string): string {
    return `sse-tab:${this.#group}:${id}`;
  }
}
