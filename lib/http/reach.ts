import { SseBadRequestError } from '../core/errors.js';

/** Bound of the `timeout` parameter: a call cannot hold a request (and its peers' answers) for longer. */
export const MAX_TIMEOUT_MS = 30_000;

/** How far a call of the Java endpoints looks: this node only, or the cluster with a per-peer wait. */
export interface Reach {
  cluster: boolean;
  timeoutMs?: number;
}

/**
 * The Java endpoints' `cluster` (`false`: this node only; any other value, or none: the whole
 * cluster) and `timeout` (the longest wait for a peer in ms, at most {@link MAX_TIMEOUT_MS};
 * default the `cluster.timeoutMs` option). Booleans as Spring reads them. `param` reads one
 * parameter (the query string, or a form's field then the query string).
 */
export function reachOf(param: (key: string) => unknown): Reach {
  const cluster = textOf(param('cluster'), 'cluster')?.toLowerCase();
  if (cluster !== undefined && !BOOLEAN.has(cluster)) throw new SseBadRequestError('cluster must be true or false');
  const timeout = textOf(param('timeout'), 'timeout');
  const reach: Reach = { cluster: cluster === undefined || BOOLEAN.get(cluster) === true };
  if (timeout !== undefined) {
    if (!/^\d{1,9}$/.test(timeout)) throw new SseBadRequestError('timeout must be a whole number');
    const ms = Number(timeout);
    if (ms < 1) throw new SseBadRequestError('timeout must be >= 1 (ms)');
    reach.timeoutMs = Math.min(ms, MAX_TIMEOUT_MS);
  }
  return reach;
}

const BOOLEAN = new Map([
  ['true', true],
  ['on', true],
  ['yes', true],
  ['1', true],
  ['false', false],
  ['off', false],
  ['no', false],
  ['0', false],
]);

/** One text parameter: the first of a repeated one; empty is absent; numbers and booleans of a JSON body as text. */
function textOf(value: unknown, key: string): string | undefined {
  const v = Array.isArray(value) ? (value[0] as unknown) : value;
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new SseBadRequestError(`${key} must be text`);
  const s = String(v);
  if (s.length > 256) throw new SseBadRequestError(`${key} is too long`);
  return s;
}
