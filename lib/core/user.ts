/** A key of the hub's indexes: user ids, tenant ids and tokens are compared as strings. */
export type Key = string | number | bigint;

/**
 * Whatever `authenticate(ctx)` returns. The library reads only these four fields; keep any
 * others (roles, e-mail, …) for your own handlers.
 */
export interface SseUser {
  /** The user id. Connections without one are anonymous: reachable by token, tenant, channel or all. */
  id?: Key | null;
  tenantId?: Key | null;
  /** A token that identifies one login (session) of the user; `sendByAccessToken` targets it. */
  accessToken?: string | null;
  /** Display name, shown in admin listings and searchable there. */
  name?: string | null;
  /** Not a field: the user id goes in {@link SseUser.id} (a `userId` would leave the user anonymous; refused at run time too). */
  userId?: never;
  [extra: string]: unknown;
}

/** The string form of a key, or undefined for null / undefined / empty. */
export function keyOf(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`Invalid key: ${value}`);
    return String(value);
  }
  if (typeof value === 'bigint') return value.toString();
  throw new TypeError(`A key must be a string, number or bigint, got ${typeof value}`);
}

/** Normalizes "one value or an array" into distinct string keys; a TypeError for anything else. */
export function keysOf(values: Key | readonly Key[], what: string): string[] {
  if (values === null || values === undefined) throw new TypeError(`${what} is required`);
  const list = Array.isArray(values) ? values : [values as Key];
  const out = new Set<string>();
  for (const v of list) {
    const k = keyOf(v);
    if (k !== undefined) out.add(k);
  }
  return [...out];
}
