import { EventEmitter } from 'node:events';
import type { PresenceChange } from '../core/channels.js';
import type { PendingLeave } from '../local/leave-queue.js';
import type { LocalNode } from '../local/local-node.js';
import type { Cluster } from './cluster.js';

/** Events of {@link PresenceTracker} (the hub re-emits them). */
export interface PresenceTrackerEvents {
  /** A user's first connection in a channel joined, anywhere in the cluster. */
  'presence-join': [change: PresenceChange];
  /** A user's last connection in a channel left everywhere, `leaveDelayMs` ago, and none came back. */
  'presence-leave': [change: PresenceChange];
  error: [error: unknown];
}

/**
 * Decides the cluster-wide `presence-join` / `presence-leave` of users in channels, once each.
 * The local node reports a user's first connection here in a channel (`member-arrived`) and
 * a leave that waited out the delay here (`member-gone`); this asks the peers for their part
 * (`member-state`) and emits when the news is news everywhere:
 *
 * - join: unless a peer holds the user in the channel since earlier (ties: the lower node id
 *   wins) or holds a leave of theirs still waiting (they never left, to the others);
 * - leave: unless a peer holds the user live in the channel, holds a later leave (that node
 *   decides when its own delay ends; ties: the higher node id decides), or has just announced
 *   a leave at least as late (it covers both).
 *
 * A peer that goes down (vanished, or left) cannot announce its users' leaves: every node that
 * knew them (`members-lost`, from the news each node sends with its questions) holds their
 * leaves as its own ({@link LocalNode.holdPeerLeave}), and the rules above pick one node to
 * announce each after `leaveDelayMs`, unless the user is back in the channel somewhere.
 *
 * Races, all small and documented: a peer that fails to answer counts as holding nothing (a
 * duplicate join or leave may follow); users whose leave was announced while their node was
 * cut off are not announced again when it is back. Nothing is asked while `interested(channel)`
 * is false (no listener, members not notified).
 */
export class PresenceTracker extends EventEmitter<PresenceTrackerEvents> {
  readonly #local: LocalNode;
  readonly #cluster: Cluster | undefined;
  readonly #interested: (channel: string) => boolean;

  /** @internal Created by the hub. */
  constructor(local: LocalNode, cluster: Cluster | undefined, interested: (channel: string) => boolean) {
    super();
    this.#local = local;
    this.#cluster = cluster;
    this.#interested = interested;
    local.on('member-arrived', (channel, userId, since) => {
      if (!this.#interested(channel)) return;
      this.#arrived(channel, userId, since).catch((err: unknown) => this.emit('error', err));
    });
    local.on('member-moved', (channel, userId) => {
      // Held for a vanished peer, back here: no news, but the peers must learn who holds them now.
      if (this.#interested(channel)) this.#tell(channel, userId);
    });
    cluster?.on('members-lost', (nodeId, members) => {
      for (const [channel, userId] of members) if (this.#interested(channel)) local.holdPeerLeave(channel, userId, nodeId);
    });
    local.on('member-gone', (leave) => {
      if (!this.#interested(leave.channel)) {
        local.settleLeave(leave);
        return;
      }
      this.#gone(leave).catch((err: unknown) => {
        local.settleLeave(leave);
        this.emit('error', err);
      });
    });
  }

  async #arrived(channel: string, userId: string, since: number): Promise<void> {
    const cluster = this.#cluster;
    // memberStates answers [] at once when there is no peer to ask.
    for (const peer of cluster === undefined ? [] : await cluster.memberStates(channel, userId, true)) {
      if (peer.leftAt !== null) return;
      if (peer.since !== null && (peer.since < since || (peer.since === since && peer.nodeId < cluster!.nodeId))) return;
    }
    this.emit('presence-join', { channel, userId });
  }

  /** Tells the peers that this node holds the user in the channel (news only: the answers are not needed). */
  #tell(channel: string, userId: string): void {
    this.#cluster?.memberStates(channel, userId, true).catch((err: unknown) => this.emit('error', err));
  }

  async #gone(leave: PendingLeave): Promise<void> {
    const cluster = this.#cluster;
    const peers = cluster === undefined ? [] : await cluster.memberStates(leave.channel, leave.userId, false);
    // Settled after the peers answered: a rejoin here meanwhile cancels the leave (no news
    // either way), but the peers were just told it was leaving here: tell them it stays.
    if (!this.#local.settleLeave(leave)) {
      if (this.#local.memberState(leave.channel, leave.userId).since !== null) this.#tell(leave.channel, leave.userId);
      return;
    }
    for (const peer of peers) {
      if (peer.since !== null) return;
      if (peer.leftAt !== null && (peer.leftAt > leave.leftAt || (peer.leftAt === leave.leftAt && peer.nodeId > cluster!.nodeId))) return;
      // A peer announced a leave at least as late as this one: it covers both.
      if (typeof peer.announcedLeftAt === 'number' && peer.announcedLeftAt >= leave.leftAt) return;
    }
    this.#local.leaveAnnounced(leave);
    this.emit('presence-leave', { channel: leave.channel, userId: leave.userId });
  }
}
