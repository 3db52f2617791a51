/** Most peers remembered (past it all are forgotten: at worst each is told once more than needed). */
const MAX_PEERS = 10_000;

/**
 * Which peers may have missed this node's durable sends: sends are forwarded to the peers up
 * at the time, so one made while a peer was down in this node's view (or not seen yet) was
 * stored here but never written to that peer's streams. When the peer comes up it learns
 * that from this node, since it may have pulled from it before those sends were stored (the
 * two nodes see each other come back at different moments). Counts, not messages: what a
 * peer missed is read from the store by its pull.
 */
export class MissedSends {
  /** Durable sends forwarded (or tried) since this node started. */
  #sends = 0;
  /** Per peer seen: the count of sends when it went down; Infinity while it is up (sends reach it). */
  readonly #downAt = new Map<string, number>();
  /** Peers a forwarded send failed to reach (it was on its way when they went down). */
  readonly #failed = new Set<string>();

  /** A durable send is forwarded to the peers up now. */
  sending(): void {
    this.#sends++;
  }

  /** The peers a forwarded send did not reach. */
  failed(nodeIds: readonly string[]): void {
    for (const id of nodeIds) this.#failed.add(id);
  }

  /** A peer went down. */
  down(nodeId: string): void {
    this.#remember(nodeId, this.#sends);
  }

  /** A peer came up: whether it may have missed sends (made while it was down, or before this node first saw it). */
  up(nodeId: string): boolean {
    const at = this.#downAt.get(nodeId) ?? 0;
    this.#remember(nodeId, Infinity);
    const failed = this.#failed.delete(nodeId);
    return failed || this.#sends > at;
  }

  #remember(nodeId: string, at: number): void {
    if (this.#downAt.size >= MAX_PEERS && !this.#downAt.has(nodeId)) this.#downAt.clear();
    this.#downAt.set(nodeId, at);
  }
}
