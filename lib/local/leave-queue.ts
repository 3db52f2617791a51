/** A user whose last connection here left a channel, waiting out the leave delay. */
export interface PendingLeave {
  readonly channel: string;
  readonly userId: string;
  /** When the last connection left (ms since the epoch). */
  readonly leftAt: number;
  /** Held here for a peer that vanished while it held the user (its node id); absent for a leave of this node's own connections. */
  readonly peer?: string;
}

/**
 * Leaves of users from channels, held for `delayMs` so that a reconnect (the same user
 * back in the channel before the delay ends) cancels them: presence does not flap. One timer
 * for all of them: the delay is the same for every entry, so insertion order is due order.
 * When an entry is due it moves to "deciding" (the cluster is asked whether the user is still
 * in the channel elsewhere) until {@link LeaveQueue.settle}; a rejoin cancels it there too.
 * A leave announced from here is remembered for another `delayMs` ({@link LeaveQueue.announcedAt}):
 * a peer deciding the same user's leave at the same moment learns that it is covered.
 *
 * Bounded by the (channel, user) pairs that left within the last two `delayMs`: the
 * remembered leaves are dropped by a timer of their own when their `delayMs` ends, so that
 * the memory of a burst of leaves is released after it, not at the next leave announced.
 */
export class LeaveQueue {
  readonly #delayMs: number;
  readonly #onDue: (leave: PendingLeave) => void;
  readonly #waiting = new Map<string, PendingLeave>();
  readonly #deciding = new Map<string, PendingLeave>();
  /** Leaves announced from here, with when, oldest first. */
  readonly #settled = new Map<string, { leftAt: number; at: number }>();
  #timer: NodeJS.Timeout | undefined;
  /** Drops the remembered leaves when the oldest one's `delayMs` ends. */
  #pruneTimer: NodeJS.Timeout | undefined;

  constructor(delayMs: number, onDue: (leave: PendingLeave) => void) {
    this.#delayMs = delayMs;
    this.#onDue = onDue;
  }

  get size(): number {
    return this.#waiting.size + this.#deciding.size + this.#settled.size;
  }

  /** Holds the leave of `userId` from `channel` (replacing one held already); `peer`: held for that vanished node. */
  add(channel: string, userId: string, leftAt: number, peer?: string): void {
    const key = keyOf(channel, userId);
    this.#deciding.delete(key);
    this.#waiting.delete(key);
    this.#waiting.set(key, peer === undefined ? { channel, userId, leftAt } : { channel, userId, leftAt, peer });
    if (this.#timer === undefined) this.#schedule();
  }

  /** The user came back: drops the held leave. True if there was one (waiting or being decided). */
  cancel(channel: string, userId: string): boolean {
    const key = keyOf(channel, userId);
    return this.#waiting.delete(key) || this.#deciding.delete(key);
  }

  /** The leave held for this user and channel, waiting or being decided. */
  get(channel: string, userId: string): PendingLeave | undefined {
    const key = keyOf(channel, userId);
    return this.#waiting.get(key) ?? this.#deciding.get(key);
  }

  /** Ends the decision on a due leave: true if it still stands (no rejoin meanwhile), and forgets it either way. */
  settle(leave: PendingLeave): boolean {
    const key = keyOf(leave.channel, leave.userId);
    if (this.#deciding.get(key) !== leave) return false;
    this.#deciding.delete(key);
    return true;
  }

  /** A settled leave was announced (`presence-leave`) from this node: remembered for `delayMs`. */
  announced(leave: PendingLeave): void {
    const key = keyOf(leave.channel, leave.userId);
    const now = Date.now();
    this.#prune(now);
    this.#settled.delete(key);
    this.#settled.set(key, { leftAt: leave.leftAt, at: now });
    this.#schedulePrune(now);
  }

  /** When the user left, for a leave of theirs from the channel announced here within the last `delayMs`. */
  announcedAt(channel: string, userId: string): number | undefined {
    this.#prune(Date.now());
    return this.#settled.get(keyOf(channel, userId))?.leftAt;
  }

  #prune(now: number): void {
    for (const [key, entry] of this.#settled) {
      if (entry.at + this.#delayMs > now) break;
      this.#settled.delete(key);
    }
  }

  /**
   * Arms the prune timer for when the oldest remembered leave ends, unless it is armed or none
   * is left. At most one run per twentieth of `delayMs`: a flood of leaves is dropped in
   * batches, not with a timer per millisecond.
   */
  #schedulePrune(now: number): void {
    if (this.#pruneTimer !== undefined) return;
    const oldest = this.#settled.values().next().value;
    if (oldest === undefined) return;
    const wait = Math.max(oldest.at + this.#delayMs - now, this.#delayMs / 20);
    this.#pruneTimer = setTimeout(() => {
      this.#pruneTimer = undefined;
      const at = Date.now();
      this.#prune(at);
      this.#schedulePrune(at);
    }, wait);
    this.#pruneTimer.unref();
  }

  /** Forgets everything and stops the timers (shutdown). */
  clear(): void {
    this.#waiting.clear();
    this.#deciding.clear();
    this.#settled.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pruneTimer !== undefined) clearTimeout(this.#pruneTimer);
    this.#pruneTimer = undefined;
  }

  #schedule(): void {
    const first = this.#waiting.values().next().value;
    if (first === undefined) {
      this.#timer = undefined;
      return;
    }
    const wait = Math.max(0, first.leftAt + this.#delayMs - Date.now());
    this.#timer = setTimeout(() => this.#fire(), wait);
    this.#timer.unref();
  }

  #fire(): void {
    const now = Date.now();
    const due: PendingLeave[] = [];
    for (const [key, leave] of this.#waiting) {
      if (leave.leftAt + this.#delayMs > now) break;
      this.#waiting.delete(key);
      this.#deciding.set(key, leave);
      due.push(leave);
    }
    this.#schedule();
    for (const leave of due) this.#onDue(leave);
  }
}

function keyOf(channel: string, userId: string): string {
  return JSON.stringify([channel, userId]);
}
