import type { ResolvedOptions } from './options.js';
import type { SseDuration } from './session-clock.js';

/**
 * Idle detection (the Java client's "leave" check): every `leaveCheckInterval` ms the page counts as
 * active when the last `mouseover` or `click` is younger than `leaveTimeout` (options read on use). It runs only while
 * connected, so a closed client keeps no timer. A client-side close makes the page inactive
 * at once; the next connect makes it active again.
 */
export class ActivityMonitor {
  #active = true;
  #inactiveByClose = false;
  #lastActivity = Date.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #onActivity = (): void => {
    this.#lastActivity = Date.now();
  };

  readonly #doc: Pick<Document, 'addEventListener' | 'removeEventListener'> | undefined;
  readonly #o: Pick<ResolvedOptions, 'leaveTimeout' | 'leaveCheckInterval'>;
  readonly #onChange: (oldActive: boolean, newActive: boolean) => void;

  constructor(
    doc: Pick<Document, 'addEventListener' | 'removeEventListener'> | undefined,
    o: Pick<ResolvedOptions, 'leaveTimeout' | 'leaveCheckInterval'>,
    onChange: (oldActive: boolean, newActive: boolean) => void,
  ) {
    this.#doc = doc;
    this.#o = o;
    this.#onChange = onChange;
    doc?.addEventListener('mouseover', this.#onActivity, { passive: true });
    doc?.addEventListener('click', this.#onActivity, { passive: true });
  }

  /** The user moved or clicked within the last `timeout` ms (as of the last check). */
  get active(): boolean {
    return this.#active;
  }

  /** Connected: checks start; a page made inactive by a close is active again. */
  start(): void {
    if (this.#inactiveByClose) {
      this.#inactiveByClose = false;
      this.#lastActivity = Date.now();
      this.#set(true);
    }
    this.#timer ??= setInterval(() => this.#check(), this.#o.leaveCheckInterval);
  }

  /** Not connected: checks stop (the state stays). */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The client closed the connection: inactive now. */
  closed(): void {
    this.stop();
    if (!this.#active) return;
    this.#inactiveByClose = true;
    this.#set(false);
  }

  /** For good: no timer, no document listener. */
  dispose(): void {
    this.stop();
    this.#doc?.removeEventListener('mouseover', this.#onActivity);
    this.#doc?.removeEventListener('click', this.#onActivity);
  }

  #check(): void {
    this.#set(Date.now() - this.#lastActivity < this.#o.leaveTimeout);
  }

  #set(active: boolean): void {
    if (active === this.#active) return;
    this.#active = active;
    this.#onChange(!active, active);
  }
}

/** The `data` of an `sse-change-active` event. */
export interface SseActiveChange {
  oldActive: boolean;
  newActive: boolean;
  /** Online time when the change happened (before the counter paused or resumed). */
  duration: SseDuration;
}
