import { readStorage, writeStorage, type StorageHost } from './storage.js';

/** Online time in seconds, as `getDuration()` and `sse-change-active` report it. */
export interface SseDuration {
  /** Seconds counted before the running period (what `sessionStorage[sseDurationKey]` holds). */
  sessionDuration: number;
  /** Seconds of the running period (0 while paused: not connected, or the user idle). */
  duration: number;
}

/**
 * Online-time accounting: the seconds this tab has been connected to one system while the
 * user was active, kept across reloads in `sessionStorage[key]` (the Java client's
 * `sseDurationKey`). The server may set the total (`sse-set-duration`), e.g. to carry a
 * user's time across tabs or reset it daily; the client counts on from there.
 */
export class SessionClock {
  #base: number;
  #since: number | undefined;

  readonly #host: StorageHost;
  readonly key: string;

  constructor(host: StorageHost, key: string) {
    this.#host = host;
    this.key = key;
    const stored = Number(readStorage(host, 'session', key));
    this.#base = Number.isFinite(stored) && stored >= 0 ? stored : 0;
  }

  /** Seconds online so far (including the running period). */
  total(): number {
    return round(this.#base + this.#running());
  }

  /** The stored and the running part, in whole seconds (as the Java client reports them). */
  duration(): SseDuration {
    return { sessionDuration: Math.round(this.#base), duration: Math.round(this.#running()) };
  }

  /** Counting starts (connected and the user active). */
  start(): void {
    this.#since ??= Date.now();
  }

  /** Counting pauses: the running period is added to the stored total. */
  stop(): void {
    if (this.#since === undefined) return;
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

  /** Forgets the total (`close()`): the key is removed, counting stops. */
  clear(): void {
    this.#base = 0;
    this.#since = undefined;
    writeStorage(this.#host, 'session', this.key, null);
  }

  #running(): number {
    return this.#since === undefined ? 0 : (Date.now() - this.#since) / 1000;
  }

  #save(): void {
    writeStorage(this.#host, 'session', this.key, String(this.#base));
  }
}

/** Seconds with millisecond precision. */
export function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
