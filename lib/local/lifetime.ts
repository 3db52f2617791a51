/**
 * Who decides a stream's lifetime (the Java library's `choseKeepaliveTime`): `'client'` — the
 * client's `keepaliveTime` when it sent one, else `maxLifetimeMs`; `'server'` — always
 * `maxLifetimeMs` (the Java default once the server configures a keepalive time); or a function
 * of both that answers the lifetime in ms (`undefined`: `maxLifetimeMs`). Whatever is chosen is
 * clamped to [`minLifetimeMs`, `maxLifetimeMs`], so a client can never hold a stream longer
 * than the server allows.
 */
export type KeepaliveChoice = 'client' | 'server' | ((clientKeepaliveMs: number | undefined, maxLifetimeMs: number) => number | undefined);

/** Checks a `keepaliveChoice` option; a TypeError names it. */
export function keepaliveChoiceOf(value: KeepaliveChoice | undefined): KeepaliveChoice {
  if (value === undefined) return 'client';
  if (value !== 'client' && value !== 'server' && typeof value !== 'function') {
    throw new TypeError(`keepaliveChoice must be 'client', 'server' or a function, got ${String(value)}`);
  }
  return value;
}

/**
 * What a chosen lifetime of 0 means (the Java `keepaliveTime` 0): `'max'` — the longest the
 * server allows (`maxLifetimeMs`); `'never'` — a stream that never expires (the Java library).
 */
export type KeepaliveZero = 'max' | 'never';

/** Checks a `keepaliveZero` option; a TypeError names it. */
export function keepaliveZeroOf(value: KeepaliveZero | undefined): KeepaliveZero {
  if (value === undefined) return 'max';
  if (value !== 'max' && value !== 'never') throw new TypeError(`keepaliveZero must be 'max' or 'never', got ${String(value)}`);
  return value;
}

/**
 * A stream's lifetime before jitter, in ms: the choice, clamped to [min, max]; a choice of 0
 * is `max`, or `Infinity` (never expires) with `zero: 'never'`.
 */
export function baseLifetime(choice: KeepaliveChoice, requested: number | undefined, min: number, max: number, zero: KeepaliveZero = 'max'): number {
  const chosen = choice === 'server' ? max : choice === 'client' ? (requested ?? max) : choice(requested, max);
  if (chosen === 0 && zero === 'never') return Infinity;
  if (typeof chosen !== 'number' || !(chosen > 0)) return max;
  return Math.min(Math.max(chosen, min), max);
}
