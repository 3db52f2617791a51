import { SseQueueFullError } from '../core/errors.js';
import type { TargetKind } from '../core/targets.js';
import { QUEUE_KINDS, type QueueCount } from './qos-store.js';

/**
 * Pending messages per queue (user, token) and stored messages in total, kept in memory so
 * that the caps are checked without a query. Taken before a message is stored, so a full
 * queue stores nothing.
 */
export class PendingCounts {
  readonly #pending = new Map<string, number>();
  readonly #maxPerTarget: number;
  readonly #maxMessages: number;
  /** Stored messages. */
  total: number;

  constructor(maxPerTarget: number, maxMessages: number) {
    this.total = 0;
    this.#maxPerTarget = maxPerTarget;
    this.#maxMessages = maxMessages;
  }

  /** Replaces every count with the store's (at start, and periodically for a store that other processes share). */
  reset(queues: readonly QueueCount[], total: number): void {
    this.#pending.clear();
    for (const { kind, key, n } of queues) this.#pending.set(countKey(kind, key), n);
    this.total = total;
  }

  /** Checks the caps for one more message to these targets and counts it; throws `ERR_SSE_QUEUE_FULL`. */
  reserve(kind: TargetKind, keys: string[]): void {
    if (this.total >= this.#maxMessages) {
      throw new SseQueueFullError(`The durable queue holds its maximum of ${this.#maxMessages} messages`);
    }
    if (QUEUE_KINDS.has(kind)) {
      for (const key of keys) {
        if (this.of(kind, key) >= this.#maxPerTarget) {
          throw new SseQueueFullError(`${kind} ${key.slice(0, 64)} has ${this.#maxPerTarget} pending durable messages`);
        }
      }
      for (const key of keys) this.add(kind, key, 1);
    }
    this.total++;
  }

  /** Counts a message stored whose caps the store checked itself. */
  added(kind: TargetKind, keys: string[]): void {
    for (const key of keys) this.add(kind, key, 1);
    this.total++;
  }

  /** Gives back what {@link reserve} took (the message was not stored). */
  release(kind: TargetKind, keys: string[]): void {
    this.total--;
    if (QUEUE_KINDS.has(kind)) for (const key of keys) this.add(kind, key, -1);
  }

  /** One stored message fewer (acked by all, expired, cancelled); never below zero, as another process may have counted it. */
  removed(): void {
    if (this.total > 0) this.total--;
  }

  /** Pending messages of one queue. */
  of(kind: TargetKind, key: string): number {
    return this.#pending.get(countKey(kind, key)) ?? 0;
  }

  add(kind: TargetKind, key: string, delta: number): void {
    if (!QUEUE_KINDS.has(kind)) return;
    const k = countKey(kind, key);
    const n = (this.#pending.get(k) ?? 0) + delta;
    if (n > 0) this.#pending.set(k, n);
    else this.#pending.delete(k);
  }
}

function countKey(kind: TargetKind, key: string): string {
  return `${kind}\u0000${key}`;
}
