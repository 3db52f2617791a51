import { describe } from './option-shape.js';

/** A positive number option, or `fallback` when absent; a TypeError names the option otherwise. */
export function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive number, got ${describe(value)}`);
  }
  return value;
}

/**
 * A positive, finite number of ms, or `fallback` when absent: a lifetime that is stored and
 * sent to peers as a time (`Infinity` is no time: JSON makes it `null`).
 */
export function positiveFinite(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive finite number, got ${describe(value)}`);
  }
  return value;
}

/** A fraction in [0, 1), or `fallback` when absent. */
export function fraction(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new TypeError(`${name} must be a number in [0, 1), got ${describe(value)}`);
  }
  return value;
}
