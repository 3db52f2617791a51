/**
 * Whether the tab counts as in use: visible, or hidden for less than the grace period. A
 * quick hide/show (switching tabs and back, a dialog) therefore never drops the stream.
 */
export class VisibilityGate {
  #active = isVisible();
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onVisibilityChange = (): void => this.#update();

  constructor(
    private readonly graceMs: () => number,
    private readonly onChange: () => void,
  ) {
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.#onVisibilityChange);
  }

  /** Visible, or hidden for less than the grace period. */
  get active(): boolean {
    return this.#active;
  }

  /** Removes the document listener and the timer. */
  stop(): void {
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.#onVisibilityChange);
    this.#clearTimer();
  }

  #update(): void {
    if (isVisible()) {
      this.#clearTimer();
      this.#set(true);
    } else if (this.#active && this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (!isVisible()) this.#set(false);
      }, this.graceMs());
    }
  }

  #set(active: boolean): void {
    if (this.#active === active) return;
    this.#active = active;
    this.onChange();
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function isVisible(): boolean {
  return typeof document === 'undefined' || document.visibilityState !== 'hidden';
}
