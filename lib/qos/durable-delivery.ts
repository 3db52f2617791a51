import { EventEmitter } from 'node:events';
import { encodeFrame } from '../core/frame.js';
import type { Connection } from '../local/connection.js';
import type { LocalNode } from '../local/local-node.js';
import { ackedByWrite } from './ack-policy.js';
import type { AckItem, DurableMessage } from './qos-cluster.js';
import { QUEUE_KINDS } from './qos-store.js';
import { PulledIds } from './pulled-ids.js';
import { ReplayPhase } from './replay-phase.js';
import { writeMessages } from './replay-writer.js';

/**
 * Per-connection replay state, kept off the Connection object: which replay a live durable
 * message is left to (see {@link ReplayPhase}). Store reads are async (Redis), and a peer's
 * answer travels: a send may commit after a read and reach the connection before the replay ends.
 */
interface ReplayState {
  /** This node's store: queue messages (user, token). Nodes sharing a Redis store all own every message. */
  queue?: ReplayPhase;
  /** This node's store: retained-log messages, while a `Last-Event-ID` resume runs. */
  log?: ReplayPhase;
  /** Messages owned by peers, pulled from them. */
  peers?: ReplayPhase;
  /** What those pulls handed to the writer, by id. */
  pulled?: PulledIds;
}

/** Events of {@link DurableDelivery}. */
export interface DurableDeliveryEvents {
  /** Queue messages were written to a client that cannot ack ({@link ackedByWrite}): they are done, here or at their owner. */
  written: [conn: Connection, items: AckItem[]];
}

/**
 * How durable messages reach this node's connections, whatever brought them: a live one (a
 * send here, or one a peer forwarded) through {@link LocalNode.deliver} like every other
 * write, stored ones (a replay, a pull) through the one replay writer. It keeps each
 * connection's replay phases, so that a live message a replay runs for is left to it.
 * Acks by write are reported (`written`); the durable facade routes them to their owner.
 */
export class DurableDelivery extends EventEmitter<DurableDeliveryEvents> {
  readonly #local: LocalNode;
  readonly #tag: string | undefined;
  readonly #replays = new WeakMap<Connection, ReplayState>();

  /** @param tag this node's store tag (its own messages), undefined without a store */
  constructor(local: LocalNode, tag: string | undefined) {
    super();
    this.#local = local;
    this.#tag = tag;
  }

  /**
   * The one way a live durable message reaches the connections here: a connection whose
   * replay of the message's owner runs, or read it, leaves it to that replay; the others get
   * it now, and a client that cannot ack is done with it once written. Returns the count reached.
   */
  deliver(message: DurableMessage, keys: string[]): number {
    const frame = encodeFrame({ event: message.event, data: message.data, id: message.id });
    return this.#local.deliver(message.kind, keys, frame, message.event, message.listening, {
      leave: (conn) => this.#leftToReplay(conn, message),
      written: (conn) => this.#ackWritten(conn, [message]),
    });
  }

  #leftToReplay(conn: Connection, message: DurableMessage): boolean {
    const state = this.#replays.get(conn);
    if (state === undefined) return false;
    const own = this.#tag !== undefined && message.id.endsWith(this.#tag);
    const phase = !own ? state.peers : QUEUE_KINDS.has(message.kind) ? state.queue : state.log;
    return phase?.takes(message) === true;
  }

  /** The phases of a replay of this node's store starting for `conn`: its queues, and its logs when it resumes. */
  ownPhases(conn: Connection, withLog: boolean): { queue: ReplayPhase; log: ReplayPhase | undefined } {
    const queue = new ReplayPhase();
    const log = withLog ? new ReplayPhase() : undefined;
    this.#replays.set(conn, log === undefined ? { queue } : { queue, log });
    return { queue, log };
  }

  /**
   * Another read of this node's queues for `conn` (a peer sharing its store stored sends it did
   * not forward here): the queue phase runs again, its marks kept; `after` is the highest id a
   * read of it vouched for, so the read starts past what the stream already got from the store.
   */
  ownAgainPhase(conn: Connection): { phase: ReplayPhase; after: string } {
    let state = this.#replays.get(conn);
    if (state === undefined) this.#replays.set(conn, (state = {}));
    if (state.queue === undefined) state.queue = new ReplayPhase();
    else state.queue.begin();
    return { phase: state.queue, after: this.#tag === undefined ? '' : state.queue.mark(true, this.#tag) };
  }

  /** The phase of a pull from the peers starting for `conn` (another run of it, when one went before: its marks stay true). */
  pullPhase(conn: Connection): ReplayPhase {
    let state = this.#replays.get(conn);
    if (state === undefined) this.#replays.set(conn, (state = {}));
    if (state.peers === undefined) state.peers = new ReplayPhase();
    else state.peers.begin();
    return state.peers;
  }

  /**
   * Of the messages a pull of everything pending for `conn` answered (or a read of this node's
   * store again), those no earlier one of it handed to the writer (a peer answers what is not
   * acknowledged yet: a second pull close to the first answers much the same). A
   * listening-mode message the connection does not listen to is not written, so not kept: a
   * later pull may write it.
   */
  unpulled(conn: Connection, messages: DurableMessage[]): DurableMessage[] {
    // Most pulls answer nothing: no set for them (one per stream would cost memory at scale).
    if (messages.length === 0) return messages;
    let state = this.#replays.get(conn);
    if (state === undefined) this.#replays.set(conn, (state = {}));
    const ids = (state.pulled ??= new PulledIds());
    return messages.filter((m) => (m.listening && !conn.listeners.has(m.event)) || ids.add(m.id));
  }

  /** One run of a phase wrote what it read: writes what the phase held, oldest first, until it is over. */
  async finish(conn: Connection, phase: ReplayPhase): Promise<void> {
    for (let held = phase.finish(); held.length > 0; held = phase.finish()) {
      if (!(await this.write(conn, held))) return phase.stop();
    }
  }

  /** Writes stored messages through the replay writer; resolves to false once the connection is gone. */
  write(conn: Connection, messages: readonly DurableMessage[]): Promise<boolean> {
    return writeMessages(conn, messages, this.#local.options.writeBufferLimit, (written) => this.#ackWritten(conn, written));
  }

  #ackWritten(conn: Connection, messages: readonly DurableMessage[]): void {
    const items: AckItem[] = [];
    for (const m of messages) {
      const target = ackedByWrite(conn, m.kind);
      if (target !== undefined) items.push({ messageId: m.id, targets: [target] });
    }
    if (items.length > 0) this.emit('written', conn, items);
  }
}
