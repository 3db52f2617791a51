import type { MembersAnswer } from './messages.js';

/**
 * Which users each peer holds in which channels, as far as presence needs it: so that when a
 * peer vanishes (or leaves) the nodes left behind can announce its users' leaves, which the
 * peer itself no longer can. Learned from the peer's own presence questions (`member-state`
 * items carry its news: arrived here, or leaving here) and, when it comes up, from a snapshot
 * (`members`). Only channels someone wants presence for travel. Bounded by the peers'
 * memberships in those channels.
 */
export class PeerMembers {
  readonly #byPeer = new Map<string, Map<string, Set<string>>>();

  /** A peer's news about one of its users: `held` true when they arrived in the channel there, false when they are leaving it there. */
  note(nodeId: string, channel: string, userId: string, held: boolean): void {
    let channels = this.#byPeer.get(nodeId);
    if (held) {
      if (channels === undefined) this.#byPeer.set(nodeId, (channels = new Map<string, Set<string>>()));
      let users = channels.get(channel);
      if (users === undefined) channels.set(channel, (users = new Set()));
      users.add(userId);
      return;
    }
    const users = channels?.get(channel);
    if (users === undefined || !users.delete(userId) || users.size > 0) return;
    channels!.delete(channel);
    if (channels!.size === 0) this.#byPeer.delete(nodeId);
  }

  /**
   * A peer's snapshot, taken when it came up. Added to what is known of it rather than
   * replacing it: news it sent while the snapshot travelled is not lost (what was known before
   * it came up was taken when it went down).
   */
  add(nodeId: string, answer: MembersAnswer): void {
    if (!Array.isArray(answer)) return;
    for (const entry of answer) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Array.isArray(entry[1])) continue;
      for (const userId of entry[1]) if (typeof userId === 'string') this.note(nodeId, entry[0], userId, true);
    }
  }

  /** What a peer held, as (channel, user) pairs, forgotten here: it went down or left. */
  take(nodeId: string): [channel: string, userId: string][] {
    const channels = this.#byPeer.get(nodeId);
    this.#byPeer.delete(nodeId);
    const out: [string, string][] = [];
    if (channels !== undefined) for (const [channel, users] of channels) for (const userId of users) out.push([channel, userId]);
    return out;
  }
}
