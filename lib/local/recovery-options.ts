import type { ShapesOf } from '../core/option-shape.js';
import type { RecoveryWindowSettings } from './recovery-window.js';

/**
 * The recovery window of ordinary sends (option `recovery`): every `send*` gets an `id:`, each
 * node keeps its own sends for a while, and a stream that comes back with the id of the last
 * event it saw gets every ordinary event it missed first, on any node
 * (`connect-finish.recovered`). `false` turns it off: ordinary events carry no id, as before.
 * On by default.
 */
export interface RecoveryOptions {
  /** How long a send stays recoverable, in ms. A page away longer gets `recovered: false`. Default `120000` (2 minutes). */
  windowMs?: number;
  /**
   * Most bytes one node's window holds (frames, their targets, ~120 bytes of bookkeeping
   * each); past it the oldest sends go first, and a page that needed one gets
   * `recovered: false`. Default 32 MiB.
   */
  maxBytes?: number;
}

/** What each `recovery` option may be. */
export const RECOVERY_OPTION_SHAPES: ShapesOf<RecoveryOptions> = {
  windowMs: 'number',
  maxBytes: 'number',
};

/** The default of `recovery.windowMs`. */
export const DEFAULT_RECOVERY_WINDOW_MS = 120_000;

/**
 * The window's settings with the defaults applied, or undefined when off; a TypeError names a
 * bad option. `slackMs`: in a cluster, how far before a resume point the sends are replayed (a
 * forwarded send's deadline, the cluster's `timeoutMs`, plus a second of clock skew); 0 for a
 * node alone.
 */
export function resolveRecovery(options: RecoveryOptions | false | undefined, slackMs: number): RecoveryWindowSettings | undefined {
  if (options === false) return undefined;
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) throw new TypeError('recovery must be an object or false');
  const windowMs = o.windowMs ?? DEFAULT_RECOVERY_WINDOW_MS;
  if (typeof windowMs !== 'number' || !(windowMs > 0) || !Number.isFinite(windowMs)) {
    throw new TypeError(`recovery.windowMs must be a positive number of ms, got ${String(windowMs)}`);
  }
  const maxBytes = o.maxBytes ?? 32 * 1024 * 1024;
  if (typeof maxBytes !== 'number' || !(maxBytes > 0)) throw new TypeError(`recovery.maxBytes must be a positive number, got ${String(maxBytes)}`);
  return { windowMs, maxBytes, slackMs };
}
