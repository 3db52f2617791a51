import type { ResolvedOptions } from './options.js';

/** What the gate uses of a document (the `documentGlobal` option). */
export type VisibilityDocument = Pick<Document, 'addEventListener' | 'removeEventListener' | 'visibilityState'>;

/**
 * Whether the tab counts as in use: visible, or hidden for less than the grace period. A
 * quick hide/show (switching tabs and back, a dialog) therefore never drops the stream.
 */
export class VisibilityGate {
  #active: boolean;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onVisibilityChange = (): void => this.#update();

  readonly #doc: VisibilityDocument | undefined;

  readonly #o: Pick<ResolvedOptions, 'hiddenGraceTime'>;
  readonly #onChange: () => void;

  /** `o.hiddenGraceTime`: how long a hidden tab still counts as in use (read on use). */
  constructor(doc: VisibilityDocument | undefined, o: Pick<ResolvedOptions, 'hiddenGraceTime'>, onChange: () => void) {
    this.#o = o;
    this.#onChange = onChange;
    this.#doc = doc;
    this.#active = this.#visible();
    doc?.addEventListener('visibilitychange', this.#onVisibilityChange);
  }

  /** Visible, or hidden for less than the grace period. */
  get active(): boolean {
    return this.#active;
  }

  /** Removes the document listener and the timer. */
  stop(): void {
    this.#doc?.removeEventListener('visibilitychange', this.#onVisibilityChange);
    this.#clearTimer();
  }

  #update(): void {
    if (this.#visible()) {
      this.#clearTimer();
      this.#set(true);
    } else if (this.#active && this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (!this.#visible()) this.#set(false);
      }, this.#o.hiddenGraceTime);
    }
  }

  #set(active: boolean): void {
    if (this.#active === active) return;
    this.#active = active;
    this.#onChange();
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #visible(): boolean {
    return this.#doc === undefined || this.#doc.visibilityState !== 'hidden';
  }
}
