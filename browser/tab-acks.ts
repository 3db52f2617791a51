import type { ParsedEvent } from './parser.js';

/** Durable events the leader keeps to hand a tab that (re)attaches what it missed in between. */
const RECENT_DURABLE = 500;
/** Most durable ids held back from acking while tabs confirm them; past it the oldest is acked. */
const MAX_PENDING = 10_000;

/**
 * The shared-tabs leader's durable bookkeeping for one stream. A durable message is
 * acknowledged to the server only once every tab that had the stream when it arrived delivered
 * it (or left), so a leader closing in between loses nothing: unacknowledged, it comes again on
 * the next leader's stream. The latest durable events are kept so that a tab (re)attaching gets
 * those after its own last id. Both bounded.
 */
export class TabAcks {
  readonly #pending = new Map<string, Set<string>>();
  #recent: ParsedEvent[] = [];

  readonly #ack: (ids: string[]) => void;

  constructor(ack: (ids: string[]) => void) {
    this.#ack = ack;
  }

  /** A durable event arrived while `tabs` (the leader included) have the stream. */
  arrived(event: ParsedEvent & { id: string }, tabs: Iterable<string>): void {
    this.#recent.push(event);
    if (this.#recent.length > RECENT_DURABLE) this.#recent.shift();
    if (this.#pending.has(event.id)) return;
    this.#pending.set(event.id, new Set(tabs));
    if (this.#pending.size > MAX_PENDING) {
      const oldest = this.#pending.keys().next().value as string;
      this.#pending.delete(oldest);
      this.#ack([oldest]);
    }
  }

  /** The durable events after `since` ('' : none; an id no longer kept: all kept). */
  after(since: string): ParsedEvent[] {
    const at = since === '' ? this.#recent.length : this.#recent.findIndex((e) => e.id === since);
    return this.#recent.slice(at + 1);
  }

  /** `tab` delivered `ids`: acknowledge those no tab is waited for any more (and those never held back). */
  delivered(tab: string, ids: readonly string[]): void {
    const now: string[] = [];
    for (const id of ids) {
      const waiting = this.#pending.get(id);
      if (waiting === undefined) now.push(id);
      else if (waiting.delete(tab) && waiting.size === 0) {
        this.#pending.delete(id);
        now.push(id);
      }
    }
    if (now.length > 0) this.#ack(now);
  }

  /** `tab` is gone: it is not waited for any more. */
  left(tab: string): void {
    const now: string[] = [];
    for (const [id, waiting] of this.#pending) {
      if (waiting.delete(tab) && waiting.size === 0) {
        this.#pending.delete(id);
        now.push(id);
      }
    }
    if (now.length > 0) this.#ack(now);
  }

  /** The stream ended: what was not acknowledged comes again on the next one. */
  clear(): void {
    this.#pending.clear();
    this.#recent = [];
  }
}
