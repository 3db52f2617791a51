/** Most window ids remembered (about 120 bytes each): past it the oldest go, and a check about them hears "not written". */
const MAX_TAKEN = 16_384;

/**
 * The window ids of the peers' ordinary sends this node wrote lately (LAN recovery window),
 * so that a sender whose forward timed out can ask whether it was written all the same
 * (`window-took`): a peer writes a send with a window id also after its deadline, and a
 * forward that timed out at the sender is most often such a late one (the peer was stalled, or
 * just started and slow), not one its pages missed. Each id is kept `keepMs` (the sender asks
 * as soon as its forward failed, within the cluster's timeout), at most {@link MAX_TAKEN}.
 */
export class TakenSends {
  readonly #keepMs: number;
  /** Id → when written, oldest first. */
  readonly #taken = new Map<string, number>();

  constructor(keepMs: number) {
    this.#keepMs = keepMs;
  }

  /** A peer's send with window id `wid` was written here. */
  took(wid: string, now = Date.now()): void {
    this.#taken.set(wid, now);
    this.#trim(now);
  }

  /** Those of `wids` written here (and still remembered). */
  which(wids: readonly string[], now = Date.now()): string[] {
    this.#trim(now);
    return wids.filter((wid) => this.#taken.has(wid));
  }

  #trim(now: number): void {
    for (const [wid, at] of this.#taken) {
      if (at >= now - this.#keepMs && this.#taken.size <= MAX_TAKEN) break;
      this.#taken.delete(wid);
    }
  }
}
