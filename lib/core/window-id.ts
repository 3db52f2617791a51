import { randomBytes } from 'node:crypto';

/**
 * Where an ordinary send sits in the recovery window: the window's epoch (a history; a new
 * one after the whole history was lost), the sender's clock and a per-sender sequence within
 * one millisecond, and the sender node's tag. Ordered per sender by `(ms, seq)`; across
 * senders by `ms`, within the clock skew and forwarding delay the window allows for.
 */
export interface WindowPosition {
  epoch: string;
  ms: number;
  seq: number;
  node: string;
}

/**
 * The `id:` of an ordinary send: `epoch.ms.seq.node`, the epoch 10 base-36 digits (its first
 * eight the creation time, so that an older epoch sorts first), `ms` and `seq` in base 36,
 * `node` 6 hex digits. The dots tell it from a durable message id (26 hex digits) at a
 * glance, on the server and in the browser client. About 28 characters.
 */
const WINDOW_ID = /^([0-9a-z]{10})\.([0-9a-z]{1,11})\.([0-9a-z]{1,6})\.([0-9a-f]{6})$/;

/** The id an ordinary send carries at `position`. */
export function formatWindowId(p: WindowPosition): string {
  return `${p.epoch}.${p.ms.toString(36)}.${p.seq.toString(36)}.${p.node}`;
}

/** The position a window id names, or undefined when `value` is not one (a durable id, garbage). */
export function parseWindowId(value: unknown): WindowPosition | undefined {
  if (typeof value !== 'string') return undefined;
  const m = WINDOW_ID.exec(value);
  if (m === null) return undefined;
  const ms = parseInt(m[2]!, 36);
  const seq = parseInt(m[3]!, 36);
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq)) return undefined;
  return { epoch: m[1]!, ms, seq, node: m[4]! };
}

/** A new epoch: the creation time (8 base-36 digits) then 2 random ones, so that the older of two sorts first. */
export function newEpoch(now = Date.now()): string {
  const random = randomBytes(2).readUInt16BE(0) % (36 * 36);
  return now.toString(36).padStart(8, '0').slice(-8) + random.toString(36).padStart(2, '0');
}

/** When an epoch began (its first eight digits): no send of that history is older. */
export function epochStart(epoch: string): number {
  return parseInt(epoch.slice(0, 8), 36);
}

/** A node's tag in the ids it gives: 6 random hex digits. */
export function newNodeTag(): string {
  return randomBytes(3).toString('hex');
}

/**
 * The durable message id at the same point in time as a window id: a plain `EventSource`
 * sends the last id of either kind as `Last-Event-ID`, and durable logs resume from a time.
 */
export function durableIdAt(p: WindowPosition): string {
  return p.ms.toString(16).padStart(12, '0') + '000000' + '00000000';
}
