import { EventEmitter } from 'node:events';
import type { TargetRef } from '../core/targets.js';
import type { Connection } from '../local/connection.js';
import type { ListenersChange, LocalNode } from '../local/local-node.js';
import type { DurableDelivery } from './durable-delivery.js';
import type { OwnPages } from './durable-role.js';
import { idAt, isMessageId } from './message-id.js';
import type { DurableMessage, PendingRequest, QosCluster } from './qos-cluster.js';
import type { ReplayPhase } from './replay-phase.js';
import { logRefsOf, queueRefsOf } from './target-refs.js';

const REPLAY_PAGE = 1000;

/**
 * Stored durable messages to a connection that opens (or starts listening to more events):
 * pages of this node's store (`own`, absent on a relay), and what the peers that own
 * messages hold for it (`cluster`, absent without one). Each is a replay phase of the
 * connection ({@link DurableDelivery.ownPhases}, {@link DurableDelivery.pullPhase}): live
 * messages of the same owner wait for it. Listens to the local node's `connect` and
 * `listeners-change`; failures are reported as `error`.
 */
export class Replay extends EventEmitter<{ error: [error: unknown] }> {
  readonly #local: LocalNode;
  readonly #delivery: DurableDelivery;
  readonly #own: OwnPages | undefined;
  readonly #cluster: QosCluster | undefined;
  /** A connection without `Last-Event-ID` reads the logs stored in the last this-many ms (0: none; `qos.newConnectionLogMs`). */
  readonly #newConnectionLogMs: number;
  /** Reads again under way per stream (`#oneAtATime`), by what asked for them; `again`: asked once more meanwhile. */
  readonly #running = new WeakMap<Connection, Map<string, { again: boolean }>>();

  constructor(local: LocalNode, delivery: DurableDelivery, own: OwnPages | undefined, cluster: QosCluster | undefined, newConnectionLogMs = 0) {
    super();
    this.#local = local;
    this.#delivery = delivery;
    this.#own = own;
    this.#cluster = cluster;
    this.#newConnectionLogMs = newConnectionLogMs;
    local.on('connect', (conn) => this.#onOpen(conn));
    local.on('listeners-change', (change) => this.#onListenersAdded(change));
  }

  /**
   * A peer with a store (re)joined: it may hold messages for the connections here (they
   * connected while it was away). Pull them from that peer only.
   */
  pullFrom(peerId: string): void {
    for (const conn of this.#local.connections()) {
      if (conn.userId === undefined && conn.accessToken === undefined) continue;
      this.#oneAtATime(conn, `pull ${peerId}`, () => this.#pullFromPeers(conn, undefined, peerId, undefined));
    }
  }

  /**
   * A peer sharing this node's store (Redis) stored durable sends it did not forward here (this
   * node was down in its view, or the forward failed): the streams here read their queues in
   * the store again, past what their last read of it vouched for. A stream connected
   * throughout gets them now instead of on its next connection; what an earlier read again
   * wrote is not written twice.
   */
  readOwnAgain(): void {
    const own = this.#own;
    if (own === undefined) return;
    for (const conn of this.#local.connections()) {
      const refs = queueRefsOf(conn);
      if (refs.length === 0 || conn.closed) continue;
      this.#oneAtATime(conn, 'own', async () => {
        const { phase, after } = this.#delivery.ownAgainPhase(conn);
        try {
          const fresh = (rows: DurableMessage[]): DurableMessage[] => this.#delivery.unpulled(conn, rows);
          await this.#pages(own, conn, refs, after, undefined, (mark) => phase.read(true, mark), fresh);
        } catch (err) {
          this.#failed(own, err);
        } finally {
          await this.#delivery.finish(conn, phase);
        }
      });
    }
  }

  /**
   * Runs `read` (a read again for `conn`, asked by a peer), one at a time per stream and
   * `key`: asked again while one runs, it runs once more after it (what the new ask is about
   * may have been stored after that read), however often it was asked meanwhile. A peer tells
   * this node after each of many failed forwards: one read in flight per stream, not one per failure.
   */
  #oneAtATime(conn: Connection, key: string, read: () => Promise<void>): void {
    const running = this.#running.get(conn) ?? new Map<string, { again: boolean }>();
    const state = running.get(key);
    if (state !== undefined) {
      state.again = true;
      return;
    }
    this.#running.set(conn, running);
    const mine = { again: false };
    running.set(key, mine);
    const loop = async (): Promise<void> => {
      do {
        mine.again = false;
        await read();
      } while (mine.again && !conn.closed);
    };
    void loop()
      .catch((err: unknown) => this.emit('error', err))
      .finally(() => {
        running.delete(key);
        if (running.size === 0 && this.#running.get(conn) === running) this.#running.delete(conn);
      });
  }

  /**
   * The owner with `tag` went away: its messages for the connections here come from the
   * holders of their copies (a connection that opened while it was dying pulled from it in vain).
   */
  pullCopiesOf(tag: string): void {
    for (const conn of this.#local.connections()) {
      if (conn.userId !== undefined || conn.accessToken !== undefined) void this.#pullFromPeers(conn, undefined, undefined, undefined, tag);
    }
  }

  /** A stream opened: resend its user's and token's pending messages, then resume the log; the same from every peer. */
  #onOpen(conn: Connection): void {
    const own = this.#own;
    const resume = this.#resumePoint(conn);
    if (own !== undefined) {
      const { queue, log } = this.#delivery.ownPhases(conn, resume !== undefined);
      void this.#replay(own, conn, queue, log, resume).catch((err: unknown) => this.#failed(own, err));
    }
    void this.#pullFromPeers(conn, undefined, undefined, resume);
  }

  /**
   * Where a connection that opened resumes the retained logs (tenant, channel, all): after its
   * `Last-Event-ID`; a new one (none) after the id of `newConnectionLogMs` ago, when set.
   */
  #resumePoint(conn: Connection): string | undefined {
    const lastEventId = conn.client.lastEventId;
    if (lastEventId !== undefined && isMessageId(lastEventId)) return lastEventId;
    if (this.#newConnectionLogMs === 0) return undefined;
    // Ids start with the ms clock: this one sorts before every message stored since then.
    return idAt(Date.now() - this.#newConnectionLogMs);
  }

  /** Listeners were added: listening-mode messages for them may now be deliverable, here and at peers. */
  #onListenersAdded({ connection: conn, added }: ListenersChange): void {
    if (added.length === 0 || conn.closed || queueRefsOf(conn).length === 0) return;
    const own = this.#own;
    if (own !== undefined) void this.#pages(own, conn, queueRefsOf(conn), '', added).catch((err: unknown) => this.#failed(own, err));
    void this.#pullFromPeers(conn, added, undefined, undefined);
  }

  /**
   * Asks the owners of durable messages what they hold for `conn`, and writes it through the
   * one replay writer. Resolves once written (never rejects: a failure is reported as `error`).
   */
  #pullFromPeers(
    conn: Connection,
    events: string[] | undefined,
    peerId: string | undefined,
    lastEventId: string | undefined,
    copiesOf?: string,
  ): Promise<void> {
    const cluster = this.#cluster;
    if (cluster === undefined) return Promise.resolve();
    const refs = queueRefsOf(conn);
    const logRefs = lastEventId === undefined ? [] : logRefsOf(conn);
    if (refs.length === 0 && logRefs.length === 0) return Promise.resolve();
    const request: PendingRequest = { refs, logRefs };
    if (lastEventId !== undefined) request.lastEventId = lastEventId;
    if (events !== undefined) request.events = events;
    if (copiesOf !== undefined) request.copiesOf = copiesOf;
    // A pull of everything pending is a replay: live messages of its owners wait for it. One for
    // newly listened events reads only some messages, so it vouches for none.
    const phase = events === undefined ? this.#delivery.pullPhase(conn) : undefined;
    const pull = async (): Promise<void> => {
      try {
        let lists = await cluster.pullPending(request, peerId);
        if (phase !== undefined) {
          for (const messages of lists) phase.pulled(messages);
          // Several pulls of one connection may answer the same pending messages: each is written once.
          lists = lists.map((messages) => this.#delivery.unpulled(conn, messages));
        }
        await Promise.all(lists.map((messages) => this.#delivery.write(conn, messages)));
      } finally {
        if (phase !== undefined) await this.#delivery.finish(conn, phase);
      }
    };
    return pull().catch((err: unknown) => void this.emit('error', err));
  }

  /** This node's store, to a connection that opened: its queues, then the logs after `resume`. */
  async #replay(own: OwnPages, conn: Connection, queue: ReplayPhase, log: ReplayPhase | undefined, resume: string | undefined): Promise<void> {
    // Failed or closed: what the phases held is written, later sends go live; what a failed read missed stays stored for the next connection.
    try {
      try {
        // An owner just back first applies the acks its peers kept for it (what was acknowledged elsewhere meanwhile).
        if (this.#cluster !== undefined) await this.#cluster.ownAcksSettled();
        await this.#pages(own, conn, queueRefsOf(conn), '', undefined, (mark) => queue.read(true, mark));
      } finally {
        await this.#delivery.finish(conn, queue);
      }
      if (log !== undefined) await this.#pages(own, conn, logRefsOf(conn), resume!, undefined, (mark) => log.read(false, mark));
    } finally {
      if (log !== undefined) await this.#delivery.finish(conn, log);
    }
  }

  /**
   * Writes this node's stored messages for `refs` after `cursor`, oldest first, a page at a
   * time, until a short page. `onRead` gets each page's mark (the store's highest id when it
   * read); `fresh` picks what of a page to write (default all).
   */
  async #pages(
    own: OwnPages,
    conn: Connection,
    refs: TargetRef[],
    cursor: string,
    events: string[] | undefined,
    onRead?: (mark: string) => void,
    fresh?: (rows: DurableMessage[]) => DurableMessage[],
  ): Promise<void> {
    for (;;) {
      if (conn.closed || own.closed) return;
      const { messages: rows, mark } = await own.page(refs, cursor, REPLAY_PAGE, events);
      onRead?.(mark);
      if (rows.length > 0) {
        if (!(await this.#delivery.write(conn, fresh === undefined ? rows : fresh(rows)))) return;
        cursor = rows[rows.length - 1]!.id;
      }
      if (rows.length < REPLAY_PAGE) return;
    }
  }

  /** A replay's error is reported, unless the store was closed under it (a shutdown: the replay ends with the stream). */
  #failed(own: OwnPages, err: unknown): void {
    if (!own.closed) this.emit('error', err);
  }
}
