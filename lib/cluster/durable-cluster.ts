import type { HelloAnswer } from '../core/hello.js';
import type { AckedBy, AckItem, DurableAnswers, DurableMessage, DurableSend, PendingRequest, QosCluster } from '../qos/qos-cluster.js';
import type { ClusterLink } from './cluster-link.js';
import { PENDING_PAGE, PendingPulls, servePulls } from './pending-pulls.js';

/**
 * Durable delivery's side of the cluster: implements {@link QosCluster} over the cluster's
 * fan-out ({@link ClusterLink}) and answers the peers' durable requests (`qos-pending`,
 * `qos-pending-batch`, `qos-ack`, and the durable items of their sends) with the
 * {@link DurableAnswers} durable delivery hands it. The cluster knows nothing of durable
 * delivery; durable delivery knows only the interface it declared.
 *
 * A message is owned by the node whose store tag ends its id. Peers sharing one store
 * (Redis) share its tag: one of them is asked for all, and they never pull from or forward
 * acks to each other.
 */
export class DurableCluster implements QosCluster {
  readonly #link: ClusterLink;
  /** Durable pulls from peers, batched per peer (see PendingPulls). */
  readonly #pulls: PendingPulls;
  /** This node's store tag, once durable delivery serves (undefined: a node without a store). */
  #ownTag: string | undefined;

  constructor(link: ClusterLink) {
    this.#link = link;
    this.#pulls = new PendingPulls(
      (nodeId, request) => link.request(nodeId, request),
      () => link.closed,
    );
  }

  serve(answers: DurableAnswers): void {
    const link = this.#link;
    this.#ownTag = answers.tag;
    if (answers.tag !== undefined) link.announce({ qosTag: answers.tag });
    link.deliverDurable((item) => answers.deliver(item));
    link.handle('qos-pending', (_from, request) => answers.pendingFor(request, PENDING_PAGE));
    link.handle('qos-pending-batch', (_from, request) => servePulls(answers, request.requests, (err) => link.error(err)));
    link.handle('qos-ack', (_from, request) => answers.ack(request.items, request.connectionId, request.by));
  }

  /** Forwards a durable send to every peer; resolves to the connections they wrote it to. */
  async forwardSend(send: DurableSend): Promise<number> {
    const { id, kind, keys, event, data, listening } = send;
    let count = 0;
    for (const n of (await this.#link.send({ kind, keys, event, data, listening, id })).values) count += n;
    return count;
  }

  /** Sends acks of durable messages to the node that owns them (found by the id's tag). */
  async forwardAcks(items: AckItem[], connectionId: string, by: AckedBy): Promise<number> {
    const link = this.#link;
    const byOwner = new Map<string, AckItem[]>();
    const owns = (peer: HelloAnswer): boolean => peer.qosTag !== undefined && items.some((i) => i.messageId.endsWith(peer.qosTag!));
    // An owner that is down keeps its messages pending: they are resent on the next connection (at-least-once).
    link.reportDown('qos-ack', owns);
    const tags = new Set<string>();
    for (const peer of link.peers()) {
      const tag = peer.qosTag;
      // Peers sharing one store (Redis) share its tag: one of them removes the entries for all.
      if (tag === undefined || tags.has(tag)) continue;
      tags.add(tag);
      const own = items.filter((i) => i.messageId.endsWith(tag));
      if (own.length > 0) byOwner.set(peer.nodeId, own);
    }
    let count = 0;
    await Promise.all(
      [...byOwner].map(async ([nodeId, own]) => {
        try {
          count += Number(await link.request(nodeId, { type: 'qos-ack', items: own, connectionId, by }));
        } catch (err) {
          // The owner keeps the message pending: it is resent on the next connection (at-least-once).
          link.peerError(nodeId, 'qos-ack', err);
        }
      }),
    );
    return count;
  }

  /** Asks the peers that have a durable store (only those can own messages) what they hold for a connection. */
  async pullPending(request: PendingRequest, peerId?: string): Promise<DurableMessage[][]> {
    const link = this.#link;
    // A peer with this node's own tag shares its store (Redis): what it holds is read here directly.
    const ownTag = this.#ownTag;
    const isOwner = (peer: HelloAnswer): boolean =>
      peer.qosTag !== undefined && peer.qosTag !== ownTag && (peerId === undefined || peer.nodeId === peerId);
    // What an owner that is down holds comes when it is back: the hub pulls from a peer on `peer-up`.
    link.reportDown('qos-pending', isOwner);
    // Peers sharing one store (Redis) share its tag and would answer the same messages: ask one of them.
    const tags = new Set<string>();
    const owners: HelloAnswer[] = [];
    for (const peer of link.peers()) {
      if (!isOwner(peer) || tags.has(peer.qosTag!)) continue;
      tags.add(peer.qosTag!);
      owners.push(peer);
    }
    const lists: DurableMessage[][] = [];
    await Promise.all(
      owners.map(async (peer) => {
        try {
          lists.push(await this.#pulls.pull(peer.nodeId, request));
        } catch (err) {
          link.peerError(peer.nodeId, 'qos-pending', err);
        }
      }),
    );
    return lists;
  }
}
