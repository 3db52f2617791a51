import type { ResolvedOptions } from './options.js';
import { ActivityMonitor, type SseActiveChange } from './activity.js';
import { SessionClock, type SseDuration } from './session-clock.js';
import type { StorageHost } from './storage.js';

/** What {@link OnlineTime} asks its client. */
export interface OnlineTimeHooks {
  /** The `sessionStorage` key of the current system's total (changes with the system). */
  key: () => string;
  /** Connected now (`connect-finish` received, stream open). */
  connected: () => boolean;
  /** Idle detection changed; `duration` is the online time just before the counter paused or resumed. */
  changed: (change: SseActiveChange) => void;
}

/**
 * Online-time accounting: a {@link SessionClock} that runs while the client is connected
 * and the user active ({@link ActivityMonitor}'s idle detection), and the
 * `sse-change-active` facts when the user turns idle or active again.
 */
export class OnlineTime {
  #clock: SessionClock;
  readonly #activity: ActivityMonitor;
  /** Online time measured just before a client-side close (what its change reports). */
  #closingDuration: SseDuration | undefined;

  readonly #host: StorageHost;
  readonly #hooks: OnlineTimeHooks;

  /** `o`: the idle check's `leaveTimeout` and `leaveCheckInterval`, read on use. */
  constructor(
    host: StorageHost,
    doc: Pick<Document, 'addEventListener' | 'removeEventListener'> | undefined,
    o: Pick<ResolvedOptions, 'leaveTimeout' | 'leaveCheckInterval'>,
    hooks: OnlineTimeHooks,
  ) {
    this.#host = host;
    this.#hooks = hooks;
    this.#clock = new SessionClock(host, hooks.key());
    this.#activity = new ActivityMonitor(doc, o, (oldActive, newActive) => this.#onActiveChange(oldActive, newActive));
  }

  /** The user moved or clicked within `leaveTimeout`; false after a client-side close. */
  get active(): boolean {
    return this.#activity.active;
  }

  /** Seconds online, running period included. */
  total(): number {
    return this.#clock.total();
  }

  /** The stored and the running part. */
  duration(): SseDuration {
    return this.#clock.duration();
  }

  /** The server says the total is `seconds` (`sse-set-duration`). */
  set(seconds: number): void {
    this.#clock.set(seconds);
  }

  /** Forgets the total (`close()`). */
  clear(): void {
    this.#clock.clear();
  }

  /** The system changed: count on from the new system's stored total. */
  reload(): void {
    this.#clock = new SessionClock(this.#host, this.#hooks.key());
  }

  /** Runs the counter while connected and the user active, pauses it otherwise. */
  sync(): void {
    if (this.#hooks.connected() && this.#activity.active) this.#clock.start();
    else this.#clock.stop();
  }

  /** Connected: idle checks run (a page made inactive by a close is active again). */
  startIdleChecks(): void {
    this.#activity.start();
  }

  /** Not connected: idle checks stop. */
  stopIdleChecks(): void {
    this.#activity.stop();
  }

  /** The client closed its connection, which had `duration`: the page is inactive now. */
  closed(duration: SseDuration): void {
    this.#closingDuration = duration;
    try {
      this.#activity.closed();
    } finally {
      this.#closingDuration = undefined;
    }
  }

  /** For good: no timer, no document listener. */
  dispose(): void {
    this.#activity.dispose();
  }

  #onActiveChange(oldActive: boolean, newActive: boolean): void {
    const duration = this.#closingDuration ?? this.#clock.duration();
    this.sync();
    this.#hooks.changed({ oldActive, newActive, duration });
  }
}
