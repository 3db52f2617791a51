import { setTimeout as delay } from 'node:timers/promises';
import type { HelloAnswer } from '../core/hello.js';
import type { ClusterLink } from './cluster-link.js';
import { MissedSends } from './missed-sends.js';

/** Most tries to tell a peer that stayed up to pull after a forward to it failed; then it is told when it next comes up. */
const TELL_TRIES = 3;
/** The pause before the second try, doubled before each next one. */
const TELL_BACKOFF_MS = 250;

/**
 * Tells peers to pull the durable sends of this node that did not reach them (`qos-pull-me`):
 * a send is forwarded to the peers up at the time, so one that was down in this node's view
 * ({@link MissedSends}) is told when it comes up, and one that stayed up but failed to take
 * a forward (timed out, refused) is told at once. A peer sharing this node's store (Redis)
 * reads that store again when told. Peers of an earlier build, which would refuse the
 * request, are never told: their streams get the sends on their next connection.
 */
export class PullNotices {
  readonly #link: ClusterLink;
  readonly #ownTag: () => string | undefined;
  readonly #missed = new MissedSends();
  /** Peers up being told to pull after a forward to them failed; `again`: another failed since the tell left. */
  readonly #telling = new Map<string, { again: boolean }>();

  /** `ownTag`: this node's durable store tag (none: nothing to pull from here). */
  constructor(link: ClusterLink, ownTag: () => string | undefined) {
    this.#link = link;
    this.#ownTag = ownTag;
  }

  /** A durable send is forwarded to the peers up now. */
  sending(): void {
    this.#missed.sending();
  }

  /** A peer went down: the sends made until it is back may miss it. */
  down(nodeId: string): void {
    this.#missed.down(nodeId);
  }

  /**
   * A peer came up (back, or first seen): when this node made durable sends that may have
   * missed it (stored while it was down here, so not forwarded), it is told to pull from this
   * node. Its own pull when it saw this node up may have come before them: the two nodes see
   * each other at different moments. A peer sharing this node's store (Redis) reads nothing
   * from its peers when it sees them up: told, it reads the store again for its streams.
   */
  up(peer: HelloAnswer): void {
    const missed = this.#missed.up(peer.nodeId);
    const tag = this.#ownTag();
    if (!missed || tag === undefined || peer.qosPullMe !== true) return;
    this.#link.request(peer.nodeId, { type: 'qos-pull-me', tag }).catch((err: unknown) => this.#link.peerError(peer.nodeId, 'qos-pull-me', err));
  }

  /**
   * Peers a forwarded durable send did not reach. One down is told when it comes up. One still
   * up (the forward timed out or was refused, and it stayed) would keep it from its streams
   * until they reconnect: it is told now, once for the failures of a moment, again if more
   * fail meanwhile, tried {@link TELL_TRIES} times.
   */
  failed(nodeIds: readonly string[]): void {
    this.#missed.failed(nodeIds);
    const up = new Set(this.#link.peers().flatMap((p) => (p.qosPullMe === true ? [p.nodeId] : [])));
    for (const nodeId of nodeIds) {
      if (!up.has(nodeId)) continue;
      const telling = this.#telling.get(nodeId);
      if (telling !== undefined) {
        telling.again = true;
        continue;
      }
      const state = { again: true };
      this.#telling.set(nodeId, state);
      void this.#tellUp(nodeId, state).finally(() => this.#telling.delete(nodeId));
    }
  }

  async #tellUp(nodeId: string, state: { again: boolean }): Promise<void> {
    const link = this.#link;
    const tag = this.#ownTag();
    if (tag === undefined) return;
    for (let tries = 0; state.again && tries < TELL_TRIES;) {
      // Gone down meanwhile: told when it comes up.
      if (link.closed || !link.peers().some((p) => p.nodeId === nodeId)) return;
      state.again = false;
      try {
        await link.request(nodeId, { type: 'qos-pull-me', tag });
        tries = 0;
      } catch (err) {
        state.again = true;
        // Reported once it gives up: the peer is then told when it next comes up.
        if (++tries < TELL_TRIES) await delay(TELL_BACKOFF_MS * 2 ** (tries - 1), undefined, { ref: false });
        else link.peerError(nodeId, 'qos-pull-me', err);
      }
    }
  }
}
