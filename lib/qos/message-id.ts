import { randomBytes } from 'node:crypto';

/**
 * Ids of durable messages: 12 hex digits of the millisecond clock, 6 of a per-process
 * sequence, 8 of a per-process random tag. They sort by time as plain strings, so a
 * `Last-Event-ID` is a resume point that means the same on every node of a cluster.
 */
export class MessageIdGenerator {
  readonly #tag: string;
  #lastMs = 0;
  #seq = 0;

  /** `tag`: 8 hex digits naming the store that owns the ids. */
  constructor(tag: string = randomBytes(4).toString('hex')) {
    if (!/^[0-9a-f]{8}$/.test(tag)) throw new TypeError('tag must be 8 hex digits');
    this.#tag = tag;
  }

  next(now = Date.now()): string {
    // A clock that steps back must not produce an id that sorts before one already issued.
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#seq = 0;
    } else if (++this.#seq > 0xffffff) {
      this.#lastMs++;
      this.#seq = 0;
    }
    return this.#lastMs.toString(16).padStart(12, '0') + this.#seq.toString(16).padStart(6, '0') + this.#tag;
  }
}

const ID = /^[0-9a-f]{26}$/;

/** The lowest id of millisecond `ms`: it sorts before every id minted at `ms` or later, by any store. */
export function idAt(ms: number): string {
  return Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0') + '0'.repeat(14);
}

/** Whether `value` has the shape of a message id (it may still be unknown). */
export function isMessageId(value: unknown): value is string {
  return typeof value === 'string' && ID.test(value);
}
