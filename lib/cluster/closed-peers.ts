/**
 * The peers that closed gracefully, as this node learnt it from their window handoff (LAN
 * recovery window, see `WindowCluster`). A node hands its window over only after its streams
 * were told to leave and drained, and right before its cluster endpoint closes; its peers
 * notice it gone only a health check or two later, and meanwhile their sends to it fail.
 *
 * - **Drained** (handed off here; until it is seen down, plus the cluster's timeout for the
 *   sends under way then, or heard from or seen up again): a send of this node that it fails to
 *   take reaches no stream there, since it has none: not a failed take that a page may have
 *   missed live (without this, every send of that gap made every resume reached by it
 *   `recovered: false` for the rest of the window, which a rolling restart always hit).
 * - **Closed gracefully** (for the window's length): its pages came back elsewhere and its
 *   handed window answers for it as if it were still up, so its going down does not judge its
 *   pages: a send it failed to take while it still served them stays a failed take, not
 *   excused as for a node that died (whose pages' resume points are judged by when it went down).
 *
 * Both end when the node is seen up again (a configured node id that comes back). A node
 * restarted under the same node id before this node saw it go down, and failing a send before
 * it asked this node anything, would be taken as drained: its first request ends that.
 */
export class ClosedPeers {
  /** How long a request under way may still fail after its node was seen down (the cluster's timeout, at most). */
  readonly #settleMs: number;
  /** Drained, until when (Infinity: not seen down yet). */
  readonly #drained = new Map<string, number>();
  /** When each closed gracefully (this node's clock). */
  readonly #closed = new Map<string, number>();

  constructor(settleMs: number) {
    this.#settleMs = settleMs;
  }

  /** `nodeId` handed its window here: its streams are drained and it is about to go. */
  handedOff(nodeId: string, now = Date.now()): void {
    this.#drained.set(nodeId, Infinity);
    this.#closed.set(nodeId, now);
  }

  /**
   * Seen down: it is not asked any more, but a send under way to it may still fail, until the
   * cluster's timeout is over.
   */
  down(nodeId: string, now = Date.now()): void {
    if (this.#drained.has(nodeId)) this.#drained.set(nodeId, Math.min(this.#drained.get(nodeId)!, now + this.#settleMs));
  }

  /** A request came from it: it serves again (back under its node id), or sent that before it closed. Either way its failures count again. */
  heardFrom(nodeId: string): void {
    this.#drained.delete(nodeId);
  }

  /** Seen up, or with a new window under its node id: it serves streams again. */
  back(nodeId: string): void {
    this.#drained.delete(nodeId);
    this.#closed.delete(nodeId);
  }

  /** Whether a send `nodeId` failed to take could have missed nothing there (it has no stream). */
  drained(nodeId: string, now = Date.now()): boolean {
    return (this.#drained.get(nodeId) ?? -1) >= now;
  }

  /** Whether `nodeId` closed gracefully (its handed window answers for it). */
  closedGracefully(nodeId: string): boolean {
    return this.#closed.has(nodeId);
  }

  /** Forgets those that closed before `before` (their handed windows are over). */
  forget(before: number): void {
    for (const [id, at] of this.#closed) if (at < before) this.#closed.delete(id);
    for (const [id, until] of this.#drained) if (until < before) this.#drained.delete(id);
  }
}
