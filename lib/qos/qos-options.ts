import { positive } from '../core/option-checks.js';

/** Options of durable delivery (`qos` option of the plugin or hub). */
export interface QosOptions {
  /** SQLite database file (its folder is created on demand), or `:memory:` for tests. Required. */
  file: string;
  /** Default time a message is kept: pending for queues, retained for logs. Default 7 days. */
  ttlMs?: number;
  /** SQLite `synchronous`: `NORMAL` survives a process crash, `FULL` also a power loss. Default `NORMAL`. */
  synchronous?: 'NORMAL' | 'FULL';
  /** Most pending messages per user or token; a send beyond it fails with `ERR_SSE_QUEUE_FULL`. Default `10000`. */
  maxPendingPerTarget?: number;
  /** Most stored messages in total. Default `1000000`. */
  maxMessages?: number;
  /** Largest serialized payload of a durable message, in bytes. Default 256 KiB. */
  maxMessageBytes?: number;
  /** How often expired messages are removed (and `qos-expired` fired), in ms. Default `60000`. */
  expiryIntervalMs?: number;
  /**
   * The file belongs to one process. How long a second process waits for it at start (e.g.
   * a rolling restart whose old process is still closing) before failing with
   * `ERR_SSE_STORE_LOCKED`, in ms. The wait blocks start-up, not requests. Default `10000`
   * (closing 15,000 streams took up to 2.6 s in the storm benchmark, more under load).
   */
  lockTimeoutMs?: number;
  /**
   * Run SQLite's `quick_check` when the store opens, so that a damaged file fails at start
   * with `ERR_SSE_STORE_CORRUPT` instead of on every ack later. Linear in the file's size
   * (about a second per GB). Default `true`.
   */
  integrityCheck?: boolean;
}

/** The store settings with every default applied. */
export interface ResolvedQosOptions {
  file: string;
  ttlMs: number;
  synchronous: 'NORMAL' | 'FULL';
  maxPendingPerTarget: number;
  maxMessages: number;
  maxMessageBytes: number;
  expiryIntervalMs: number;
  lockTimeoutMs: number;
  integrityCheck: boolean;
}

const DAY = 24 * 60 * 60 * 1000;

/** Applies every default and checks every value; a TypeError names a bad option. */
export function resolveQosOptions(options: QosOptions): ResolvedQosOptions {
  if (options === null || typeof options !== 'object' || typeof options.file !== 'string' || options.file === '') {
    throw new TypeError('qos.file must be a path or ":memory:"');
  }
  if (options.synchronous !== undefined && options.synchronous !== 'NORMAL' && options.synchronous !== 'FULL') {
    throw new TypeError('qos.synchronous must be "NORMAL" or "FULL"');
  }
  return {
    file: options.file,
    ttlMs: positive(options.ttlMs, 'qos.ttlMs', 7 * DAY),
    synchronous: options.synchronous ?? 'NORMAL',
    maxPendingPerTarget: positive(options.maxPendingPerTarget, 'qos.maxPendingPerTarget', 10_000),
    maxMessages: positive(options.maxMessages, 'qos.maxMessages', 1_000_000),
    maxMessageBytes: positive(options.maxMessageBytes, 'qos.maxMessageBytes', 256 * 1024),
    expiryIntervalMs: positive(options.expiryIntervalMs, 'qos.expiryIntervalMs', 60_000),
    lockTimeoutMs: positive(options.lockTimeoutMs, 'qos.lockTimeoutMs', 10_000),
    integrityCheck: options.integrityCheck ?? true,
  };
}
