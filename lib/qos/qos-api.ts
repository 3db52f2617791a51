// The shapes of `hub.qos`'s API: what a durable send takes and answers, what its events carry.
import type { TargetKind, TargetRef } from '../core/targets.js';

/** Options of a durable send. */
export interface QosSendOptions {
  /** Deliver only to connections whose listener set contains the event name. Default `false`. */
  listening?: boolean;
  /** Time to keep the message, in ms (positive and finite). Default: the `ttlMs` option. */
  ttlMs?: number;
  /**
   * Resolve only once the message was delivered (the Java library's future): every user or
   * token it is for has acknowledged it (or it was written to a client that cannot ack).
   * `true` waits as long as the message lives (`ttlMs`); a number waits at most that many ms.
   * The answer then has `acknowledged`: `false` when the wait ran out, the message expired or
   * was cancelled (it stays stored until then: at least once still holds). Only for user and
   * token sends (queues); a tenant, channel or "all" message is never acknowledged (TypeError).
   * Default `false`: resolve once the message is committed, and learn of delivery from the
   * `qos-acked` event.
   */
  waitForDelivery?: boolean | number;
  /**
   * Makes a retried send safe (1-200 characters, e.g. the id of the business event): a send
   * with a key the store already holds, within the first send's time to live, stores and
   * delivers nothing and resolves to the first send's `messageId` (`delivered: 0`). Kept in
   * the store (SQLite or Redis), so it holds across restarts and, on Redis, across nodes.
   * Default: none.
   */
  idempotencyKey?: string;
}

/** What a durable send resolves to, once the message is committed. */
export interface QosSendResult {
  /** Time-sortable id: the SSE `id:` of the event, usable with `status` and `cancel`. */
  messageId: string;
  /** Connections it was written to (or is being replayed to) right now. */
  delivered: number;
  /**
   * Nodes that hold the message committed when the send resolved: its owner and the replicas
   * that committed it (`qos.replication`). 1 without replication, with a shared store (Redis:
   * the database is the copy), or when fewer nodes were up (`whenShort: 'degrade'`).
   */
  copies: number;
  /** With `waitForDelivery`: whether every target acknowledged it before the wait ended. */
  acknowledged?: boolean;
}

/** Payload of the hub's `qos-acked` event: one target is done with a message. */
export interface QosAckedEvent {
  messageId: string;
  kind: 'user' | 'token';
  key: string;
  /** The connection that acknowledged it. */
  connectionId: string;
  /** `ack`: the client acknowledged; `write`: written to a client that cannot acknowledge. */
  by: 'ack' | 'write';
  /** No target of the message is left pending. */
  complete: boolean;
}

/** Payload of the hub's `qos-expired` event: a target never acknowledged the message in time. */
export interface QosExpiredEvent {
  messageId: string;
  kind: 'user' | 'token';
  key: string;
  event: string;
}

/** What `status` tells of a stored message. */
export interface QosStatus {
  messageId: string;
  kind: TargetKind;
  event: string;
  listening: boolean;
  createdAt: number;
  expiresAt: number;
  /** Targets that have not acknowledged it (queues), or that it is retained for (logs). */
  targets: TargetRef[];
}

/** Events of durable delivery (the hub re-emits them). */
export interface QosEvents {
  /** A target acknowledged a durable message (or it was written to a client that cannot ack). */
  'qos-acked': [event: QosAckedEvent];
  /** A durable message expired before a target acknowledged it. */
  'qos-expired': [event: QosExpiredEvent];
  /** Something failed in the background (a replay, a store write); the hub reports it. */
  error: [error: unknown];
}
