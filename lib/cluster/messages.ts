import type { TargetKind, TargetRef } from '../qos/store.js';

/** Who a cluster operation is for: a send target kind, or connection ids. */
export type ClusterTargetKind = TargetKind | 'connection';

/** One send, as forwarded to peers: the payload is already serialized. */
export interface SendItem {
  kind: ClusterTargetKind;
  keys: string[];
  event: string;
  /** Serialized payload (strings verbatim, else JSON). */
  data: string;
  listening: boolean;
  /** Durable message id (its owner is the node whose tag ends it). */
  id?: string;
}

/** A durable message as an owner hands it to the node holding the connection. */
export interface WireMessage {
  id: string;
  kind: TargetKind;
  event: string;
  data: string;
  listening: boolean;
}

/** Names of the cluster-wide queries. */
export type QueryName =
  | 'userIds'
  | 'users'
  | 'accessTokens'
  | 'tenantIds'
  | 'channels'
  | 'connectionCount'
  | 'isOnline'
  | 'user'
  | 'userIdsListening'
  | 'connections'
  | 'connectionById';

/**
 * Every request between nodes: a discriminated union, so the handler's switch is exhaustive
 * and a new kind of message cannot be forgotten.
 */
export type ClusterRequest =
  | { type: 'hello' }
  | { type: 'send'; items: SendItem[] }
  | { type: 'query'; name: QueryName; args: unknown[] }
  | { type: 'disconnect'; kind: ClusterTargetKind; keys: string[]; reconnect: boolean; reason: 'kick' | 'client' }
  | { type: 'duration'; kind: ClusterTargetKind; keys: string[]; seconds: number }
  | { type: 'listeners'; connectionId: string; names: string[]; add: boolean }
  | { type: 'qos-pending'; refs: TargetRef[]; logRefs: TargetRef[]; lastEventId?: string; events?: string[] }
  | { type: 'qos-ack'; items: { messageId: string; targets: TargetRef[] }[]; connectionId: string; by: 'ack' | 'write' };

export type { HelloAnswer } from '../core/hello.js';

export const PROTOCOL_VERSION = 1;
