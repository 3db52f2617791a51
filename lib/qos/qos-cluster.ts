import type { TargetKind, TargetRef } from '../core/targets.js';

/** A durable message as it travels: the payload already serialized. */
export interface DurableMessage {
  id: string;
  kind: TargetKind;
  event: string;
  /** Serialized payload (strings verbatim, else JSON). */
  data: string;
  listening: boolean;
}

/** A durable send forwarded to the nodes holding its targets. */
export interface DurableSend extends DurableMessage {
  keys: string[];
}

/** Acknowledgements of one message for some of its queue targets. */
export interface AckItem {
  messageId: string;
  targets: TargetRef[];
}

/** `ack`: the client acknowledged; `write`: written to a client that cannot acknowledge. */
export type AckedBy = 'ack' | 'write';

/** What a connection that opened (or started listening) asks the owners of durable messages for. */
export interface PendingRequest {
  /** Its queues (user, token). */
  refs: TargetRef[];
  /** Its retained logs (all, tenant, channel), read only after `lastEventId`. */
  logRefs: TargetRef[];
  lastEventId?: string;
  /** Only listening-mode messages for these newly listened events. */
  events?: string[];
}

/**
 * What a node answers its peers about durable messages. Durable delivery hands it to the
 * cluster once ({@link QosCluster.serve}); it is made of the parts below the durable facade
 * (the owner role, the live delivery), so that no object holds one that holds it back.
 */
export interface DurableAnswers {
  /** This node's store tag; undefined for a node without a store (it owns no message). */
  readonly tag: string | undefined;
  /** A peer forwarded a durable send it owns (or, sharing a Redis store, one it sent): written here like one of this node's. Answers the count reached. */
  deliver(send: DurableSend): number;
  /** A peer forwards acks of messages this node owns; answers the entries removed. */
  ack(items: AckItem[], connectionId: string, by: AckedBy): Promise<number>;
  /** What a peer's connection should get from this node (at most `limit`): pending queue messages, then the log after its resume point. */
  pendingFor(request: PendingRequest, limit: number): Promise<DurableMessage[]>;
}

/**
 * What durable delivery needs from a cluster, declared here so that this layer never
 * depends on how nodes talk. A message is owned by the node whose store tag ends its id;
 * acks go back to that owner.
 */
export interface QosCluster {
  /** Writes a durable send to the peers' connections; resolves to how many they wrote it to. */
  forwardSend(send: DurableSend): Promise<number>;
  /** Sends acknowledgements of messages owned by peers to their owners; resolves to entries removed. */
  forwardAcks(items: AckItem[], connectionId: string, by: AckedBy): Promise<number>;
  /**
   * Asks every peer with a durable store (or only `peerId`) what it holds for these targets:
   * one list of messages per peer that answered, oldest first.
   */
  pullPending(request: PendingRequest, peerId?: string): Promise<DurableMessage[][]>;
  /** Answers the peers' durable requests with `answers` from now on (called once, before the cluster starts). */
  serve(answers: DurableAnswers): void;
}
