import { readStorage, writeStorage } from './storage.js';

/**
 * Online-time accounting: the seconds this tab has been connected to one system, kept across
 * reloads in `sessionStorage`. The server may set the total (`sse-set-duration`), e.g. to
 * carry a user's time across tabs or reset it daily; the client counts on from there.
 */
export class SessionClock {
  #base: number;
  #since: number | undefined;

  constructor(private readonly key: string) {
    const stored = Number(readStorage('session', key));
    this.#base = Number.isFinite(stored) && stored >= 0 ? stored : 0;
  }

  /** Seconds online so far (including the current connection). */
  total(): number {
    const running = this.#since === undefined ? 0 : (Date.now() - this.#since) / 1000;
    return round(this.#base + running);
  }

  /** A connection opened. */
  start(): void {
    this.#since ??= Date.now();
  }

  /** The connection closed. */
  stop(): void {
    this.#base = this.total();
    this.#since = undefined;
    this.#save();
  }

  /** The server says the total is `seconds`. */
  set(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.#base = seconds;
    if (this.#since !== undefined) this.#since = Date.now();
    this.#save();
  }

  #save(): void {
    writeStorage('session', this.key, String(this.#base));
  }
}

/** Seconds with millisecond precision. */
export function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
