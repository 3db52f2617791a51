import { distance } from 'fastest-levenshtein';

/**
 * What an option may be, checked before anything starts: a typo in a key, a number given as
 * a string or a misspelt enum value is a TypeError at `ssePlugin()` / `createHub()` that names
 * the option, what it got and, for an unknown key, the nearest known one. The values' own
 * ranges are checked where the defaults are applied (option-checks.ts).
 */
export type Shape =
  | 'number'
  | 'string'
  | 'boolean'
  | 'function'
  | 'object'
  | 'any'
  | { readonly oneOf: readonly (string | number | boolean)[]; readonly or?: Shape }
  | { readonly arrayOf: Shape }
  | { readonly options: ShapeMap }
  | { readonly anyOf: readonly Shape[] };

/** Shapes by option key. */
export type ShapeMap = Readonly<Record<string, Shape>>;

/**
 * The shapes of every key of an options type, no more, no less: an option added to the type
 * without its shape (or a shape left for a removed option) fails the type-check.
 */
export type ShapesOf<T> = { readonly [K in keyof Required<T>]: Shape };

/** Checks `value` (an options object) against `shapes`; `path` names it in errors (e.g. `cluster`). */
export function checkOptionShapes(value: unknown, shapes: ShapeMap, path: string): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${path || 'options'} must be an object, got ${describe(value)}`);
  }
  for (const [key, item] of Object.entries(value)) {
    const name = path === '' ? key : `${path}.${key}`;
    const shape = shapes[key];
    if (shape === undefined) {
      const near = nearest(key, Object.keys(shapes));
      throw new TypeError(`Unknown option ${name}${near === undefined ? '' : `: did you mean ${path === '' ? near : `${path}.${near}`}?`}`);
    }
    if (item !== undefined) checkShape(item, shape, name);
  }
}

function checkShape(value: unknown, shape: Shape, name: string): void {
  const problem = mismatch(value, shape, name);
  if (problem !== undefined) throw new TypeError(problem);
}

/** Why `value` does not fit `shape`, or undefined when it does. Nested options throw their own errors. */
function mismatch(value: unknown, shape: Shape, name: string): string | undefined {
  if (shape === 'any') return undefined;
  if (typeof shape === 'string') {
    const fits =
      shape === 'number'
        ? typeof value === 'number' && !Number.isNaN(value)
        : shape === 'object'
          ? value !== null && typeof value === 'object'
          : typeof value === shape;
    return fits ? undefined : `${name} must be ${article(shape)}, got ${describe(value)}`;
  }
  if ('oneOf' in shape) {
    if (shape.oneOf.includes(value as string | number | boolean)) return undefined;
    if (shape.or !== undefined && mismatch(value, shape.or, name) === undefined) return undefined;
    const listed = shape.oneOf.map((v) => JSON.stringify(v)).join(', ');
    const near =
      typeof value === 'string'
        ? nearest(
            value,
            shape.oneOf.filter((v): v is string => typeof v === 'string'),
          )
        : undefined;
    return `${name} must be one of ${listed}${shape.or === undefined ? '' : ` or ${describeShape(shape.or)}`}, got ${describe(value)}${near === undefined ? '' : ` (did you mean ${JSON.stringify(near)}?)`}`;
  }
  if ('arrayOf' in shape) {
    if (!Array.isArray(value)) return `${name} must be an array, got ${describe(value)}`;
    for (const [i, item] of value.entries()) checkShape(item, shape.arrayOf, `${name}[${i}]`);
    return undefined;
  }
  if ('options' in shape) {
    checkOptionShapes(value, shape.options, name);
    return undefined;
  }
  const fits = shape.anyOf.some((s) => mismatch(value, s, name) === undefined);
  return fits ? undefined : `${name} must be ${shape.anyOf.map(describeShape).join(' or ')}, got ${describe(value)}`;
}

function describeShape(shape: Shape): string {
  if (typeof shape === 'string') return article(shape);
  if ('oneOf' in shape) return `one of ${shape.oneOf.map((v) => JSON.stringify(v)).join(', ')}`;
  if ('arrayOf' in shape) return 'an array';
  if ('options' in shape) return 'an object';
  return shape.anyOf.map(describeShape).join(' or ');
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** A value as an error message shows it: its type, and the value itself where short. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof value === 'boolean' ? 'a boolean' : 'the number'} ${String(value)}`;
    case 'function':
      return 'a function';
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return 'a symbol';
    default:
      return 'an object';
  }
}

/** The candidate nearest to `word` by edit distance, if near enough to be a likely typo. */
function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}
