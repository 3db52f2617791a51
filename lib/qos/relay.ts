import { EventEmitter } from 'node:events';
import { SseQosDisabledError } from '../core/errors.js';
import type { QosStatus } from './qos-api.js';
import type { AcksMeanwhile, CopyItem, DurableMessage } from './qos-cluster.js';
import type { DurableRole, DurableRoleEvents } from './durable-role.js';
import type { StoredEntry } from './qos-store.js';

/**
 * The role of a clustered node without a durable store (no `qos` option): it owns no
 * message, so it stores, removes and serves nothing, and its user API is disabled
 * (`ERR_SSE_QOS_DISABLED`). Durable delivery still runs on it for the messages its peers
 * own: live ones they forward, pending ones pulled when a stream opens, acks sent back.
 */
export class Relay extends EventEmitter<DurableRoleEvents> implements DurableRole {
  readonly tag = undefined;
  readonly hasStore = false;
  readonly shared = false;
  readonly pages = undefined;
  readonly copies = undefined;

  async acksMeanwhile(): Promise<AcksMeanwhile> {
    return { removed: 0, already: 0 };
  }

  async held(): Promise<string[]> {
    return [];
  }

  async ownPage(): Promise<CopyItem[]> {
    return [];
  }

  async commit(): Promise<never> {
    throw new SseQosDisabledError();
  }

  async removeOwn(): Promise<number> {
    return 0;
  }

  async ackForwarded(): Promise<number> {
    return 0;
  }

  async pendingFor(): Promise<DurableMessage[]> {
    return [];
  }

  async status(): Promise<QosStatus | undefined> {
    throw new SseQosDisabledError();
  }

  async cancel(): Promise<boolean> {
    throw new SseQosDisabledError();
  }

  pendingCount(): number {
    return 0;
  }

  async list(): Promise<{ total: number; items: StoredEntry[] }> {
    throw new SseQosDisabledError();
  }

  async expireNow(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}
}
