import type { ClusterRequest } from './messages.js';

/**
 * A message on a node's channel or the broadcast channel of the Redis engine: what
 * `RedisTransport` publishes and reads, and what the Redis emitter publishes.
 */
export type Envelope =
  | { k: 'q'; id: number; from: string; to?: string[]; req: ClusterRequest }
  | { k: 'a'; id: number; from: string; ok: true; v: unknown }
  | { k: 'a'; id: number; from: string; ok: false; e: string }
  | { k: 'bye'; from: string }
  /** One-way: run it, answer nothing (a count-free send). */
  | { k: 'n'; from: string; to?: string[]; req: ClusterRequest };

/** Whether `value` has the shape of an {@link Envelope} (the request inside is checked by the cluster). */
export function isEnvelope(value: unknown): value is Envelope {
  if (value === null || typeof value !== 'object') return false;
  const m = value as Record<string, unknown>;
  if (typeof m.from !== 'string') return false;
  if (m.k === 'bye') return true;
  const to = m.to === undefined || (Array.isArray(m.to) && m.to.every((id) => typeof id === 'string'));
  if (m.k === 'n') return to;
  if (!Number.isSafeInteger(m.id)) return false;
  if (m.k === 'a') return typeof m.ok === 'boolean';
  return m.k === 'q' && to;
}
