import type { HelloAnswer } from '../core/hello.js';
import type { CopyItem, DurableAnswers } from '../qos/qos-cluster.js';
import type { ClusterLink } from './cluster-link.js';
import type { CopyBatches } from './copy-batches.js';
import { rendezvous } from './rendezvous.js';

/** Most messages read from a store per page while copying them again. */
const PAGE = 1000;

/** What re-replication reads of the durable cluster it serves. */
export interface RereplicationHost {
  readonly link: ClusterLink;
  /** Sends copies to a replica (the same batching as a send's copies). */
  readonly copies: CopyBatches;
  ownTag(): string | undefined;
  answers(): DurableAnswers;
  /** Live peers that can hold copies. */
  copyPeers(): HelloAnswer[];
  /** Owner tags whose copies this node holds and whose owner is not up. */
  absentTags(): string[];
  /** Counts copies sent again. */
  copied(n: number): void;
}

/**
 * Re-replication (`qos.replication.rereplicateAfterMs`): an owner away longer than that has
 * the copies held here copied again to other live nodes; a peer that may have held copies,
 * away as long, has this node's own messages copied again to the replicas that are up. Once
 * per absence, so that a second loss later loses none of what the first left with one copy.
 * Also keeps when each owner tag was last seen up, which the durable cluster reads.
 */
export class Rereplication {
  readonly #host: RereplicationHost;
  /** Per owner tag: when a peer with it was last seen up. */
  readonly #lastSeen = new Map<string, number>();
  readonly startedAt = Date.now();
  /** Absent owners' tags whose copies this node copied again, and to whom. */
  readonly #recopied = new Map<string, Set<string>>();
  /** Absent peers' tags for which this node copied its own messages again (until they are back). */
  readonly #ownRecopied = new Set<string>();
  #ticking = false;

  constructor(host: RereplicationHost) {
    this.#host = host;
  }

  /** A peer with this tag was seen up, or went down, now. */
  seen(tag: string): void {
    this.#lastSeen.set(tag, Date.now());
  }

  /** A peer with this tag was seen since this node started. */
  known(tag: string): boolean {
    return this.#lastSeen.has(tag);
  }

  /** Copies again what the nodes gone longer than `rereplicateAfterMs` left with too few copies (one run at a time). */
  async tick(replication: { copies: number; rereplicateAfterMs: number }): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    const host = this.#host;
    try {
      const now = Date.now();
      const peers = host.link.peers();
      const upIds = new Set(peers.map((p) => p.nodeId));
      for (const p of peers) {
        if (p.qosTag === undefined) continue;
        this.#lastSeen.set(p.qosTag, now);
        this.#ownRecopied.delete(p.qosTag);
      }
      const gone = (tag: string): boolean => now - (this.#lastSeen.get(tag) ?? this.startedAt) > replication.rereplicateAfterMs;
      // Copies of absent owners, from here to other live nodes.
      const wanted = Math.max(2, replication.copies) - 1;
      for (const tag of host.absentTags()) {
        if (!gone(tag)) continue;
        const done = this.#recopied.get(tag);
        if (done !== undefined && [...done].every((id) => upIds.has(id))) continue;
        const to = await this.#copyAgain((after, limit) => Promise.resolve(host.answers().copies!.page(tag, after, limit)), wanted);
        if (to.size > 0) this.#recopied.set(tag, to);
      }
      // This node's own messages, when a peer that may have held copies is gone.
      const ownTag = host.ownTag();
      if (replication.copies > 1 && ownTag !== undefined) {
        const absent = [...this.#lastSeen.keys()].filter((t) => t !== ownTag && !this.#ownRecopied.has(t) && gone(t));
        const upTags = new Set(peers.map((p) => p.qosTag));
        const away = absent.filter((t) => !upTags.has(t));
        if (away.length > 0) {
          for (const t of away) this.#ownRecopied.add(t);
          await this.#copyAgain((after, limit) => host.answers().ownPage(after, limit), replication.copies - 1);
        }
      }
    } catch (err) {
      host.link.error(err);
    } finally {
      this.#ticking = false;
    }
  }

  /** Copies pages of messages to their `wanted` best live replicas (rendezvous over the peers up now); answers the nodes copied to. */
  async #copyAgain(page: (after: string, limit: number) => Promise<CopyItem[]>, wanted: number): Promise<Set<string>> {
    const host = this.#host;
    const to = new Set<string>();
    for (let after = ''; ;) {
      if (host.link.closed) break;
      const items = await page(after, PAGE);
      if (items.length === 0) break;
      const candidates = host.copyPeers();
      const sent = await Promise.all(
        items.flatMap((item) =>
          rendezvous(`${item.kind}\0${item.keys[0] ?? ''}`, candidates)
            .slice(0, wanted)
            .map(async (peer) => {
              const ok = await host.copies.copy(peer.nodeId, item, undefined);
              if (ok) to.add(peer.nodeId);
              return ok;
            }),
        ),
      );
      host.copied(sent.filter(Boolean).length);
      if (items.length < PAGE) break;
      after = items[items.length - 1]!.id;
    }
    return to;
  }
}
