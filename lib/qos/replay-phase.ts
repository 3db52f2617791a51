import { isMessageId } from './message-id.js';
import type { DurableMessage } from './qos-cluster.js';
import { QUEUE_KINDS } from './qos-store.js';

/**
 * What one read of a replay vouches for: the messages of one owner (the store tag ending
 * their ids) and one class (queues, or retained logs; a pull reads them apart) up to a mark.
 */
function markKey(queue: boolean, id: string): string {
  return (queue ? 'q' : 'l') + id.slice(-8);
}

function keyOf(message: DurableMessage): string {
  return markKey(QUEUE_KINDS.has(message.kind), message.id);
}

const byId = (x: DurableMessage, y: DurableMessage): number => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);

/**
 * One replay to one connection (its own store's pages, or a pull from the peers that own
 * messages), and the live durable messages that reach the connection while it runs, by any
 * path: a send here, or one a peer forwarded. Ids of one owner sort in its commit order, so
 * a read vouches for every message of that owner up to a mark: this store's highest id
 * committed when a page was read, or the highest id an owner answered a pull with. A live
 * message up to the mark is the replay's (written, or read by a later page); a newer one is
 * held while the replay runs and written after it, oldest first; once it ended, newer ones
 * are written at once. So a message reaches the connection once, and each owner's in order.
 */
export class ReplayPhase {
  /** Runs in progress: a pull may start while another one of the same connection is on its way. */
  #runs = 1;
  /** Per owner and class: the highest id a read vouched for. */
  readonly #marks = new Map<string, string>();
  /** The highest of the marks. */
  #top = '';
  #held: DurableMessage[] = [];

  /** Another run starts (a pull from a peer that came up); the phase's marks stay. */
  begin(): void {
    this.#runs++;
  }

  /**
   * Whether a live message is the replay's: vouched for by a read, or held for it to write
   * when it ends. False: write it now.
   */
  takes(message: DurableMessage): boolean {
    // Once the replay is over, live messages are newer than all it read: no key to look up.
    if (this.#runs === 0 && message.id > this.#top) return false;
    const mark = this.#marks.get(keyOf(message));
    if (mark !== undefined && message.id <= mark) return true;
    if (this.#runs === 0) return false;
    this.#held.push(message);
    return true;
  }

  /** The highest id a read vouched for, of the owner with `tag` and one class (queues, or logs); '' when none. */
  mark(queue: boolean, tag: string): string {
    return this.#marks.get(markKey(queue, tag)) ?? '';
  }

  /** A page of this node's store was read: it vouches for every message of its class up to `mark`. */
  read(queue: boolean, mark: string): void {
    if (mark !== '') this.#vouch(markKey(queue, mark), mark);
  }

  /** A pull was answered with `messages`: per owner and class, each vouches for the messages up to its newest. */
  pulled(messages: readonly DurableMessage[]): void {
    const highest = new Map<string, string>();
    for (const m of messages) {
      if (!isMessageId(m.id)) continue; // nothing to vouch for: it is written as it is, like before
      const key = keyOf(m);
      if (m.id > (highest.get(key) ?? '')) highest.set(key, m.id);
    }
    for (const [key, mark] of highest) this.#vouch(key, mark);
  }

  #vouch(key: string, mark: string): void {
    if (mark <= (this.#marks.get(key) ?? '')) return;
    this.#marks.set(key, mark);
    if (mark > this.#top) this.#top = mark;
    // Held messages the read vouches for are the replay's now.
    if (this.#held.length > 0) this.#held = this.#held.filter((m) => m.id > mark || keyOf(m) !== key);
  }

  /**
   * One run has written what it read. Answers what it must still write: the held messages,
   * oldest first; the caller writes them and asks again. Answers none while another run goes
   * on (that one writes them), and none once the phase is over: that is decided in the same
   * turn as the check, so no live message falls between the replay and the live path.
   */
  finish(): DurableMessage[] {
    if (this.#runs > 1) {
      this.#runs--;
      return [];
    }
    const held = this.#held;
    this.#held = [];
    if (held.length === 0) this.#runs = 0;
    return held.sort(byId);
  }

  /** The connection is gone: nothing more to write (what was held stays stored at its owner). */
  stop(): void {
    this.#runs = 0;
    this.#held = [];
  }
}
