import type { Context } from 'koa';
import { SseBadRequestError, SseNotFoundError } from '../core/errors.js';
import type { StoredEntry, StoreFilter } from '../qos/qos-store.js';
import type { SseUser } from '../core/user.js';
import type { AdminStats, Page } from '../core/admin-api.js';
import { connectionView, messageView } from './admin-views.js';
import type { UserCall } from './call.js';
import { ok } from './endpoint.js';
import { reachOf as reachOfParams, type Reach } from './reach.js';

const MAX_PAGE_SIZE = 1000;
/** The Java library's default page size (its controller's `pageSize` default). */
const DEFAULT_PAGE_SIZE = 100;

/**
 * `GET {base}/connect/users.json?pageNum&pageSize&name&cluster&timeout`: online users, as
 * `redactUser` shows them.
 */
export async function users({ ctx, env }: UserCall): Promise<void> {
  const paging = pagingOf(ctx);
  const name = text(ctx, 'name');
  const { value, partial } = await env.hub.queryWithin('users', [], reachOf(ctx));
  const all = value.filter((u) => matchesName(u, name));
  ok(ctx, env, { ...page(all, paging, (u) => env.options.redactUser(u)), partial, timeout: partial });
}

/**
 * `GET {base}/connect/connections.json?pageNum&pageSize&name&clientId&id&cluster&timeout`:
 * connections, oldest first, as `mapToConnectionVO` shows them.
 */
export async function connections({ ctx, env }: UserCall): Promise<void> {
  const paging = pagingOf(ctx);
  const name = text(ctx, 'name');
  const id = text(ctx, 'id');
  const clientId = text(ctx, 'clientId');
  const filter = clientId === undefined ? {} : { clientId };
  const { value, partial } = await env.hub.queryWithin('connections', [filter], reachOf(ctx));
  const all = value.filter((c) => (id === undefined || c.id === id) && matchesName(c.user, name));
  all.sort((a, b) => a.createdAt - b.createdAt);
  // The user object may hold anything the app put in it (tokens, e-mail): the view shows only the redacted user.
  const { redactUser, mapToConnectionVO } = env.options;
  ok(ctx, env, { ...page(all, paging, (c) => mapToConnectionVO(c, connectionView(c, redactUser))), partial, timeout: partial });
}

/** The deepest message a cluster-wide listing pages to: each store is read up to the page's end. */
const MAX_LISTED = 10_000;

/**
 * `GET {base}/connect/repositoryMessages.json?pageNum&pageSize&userId&tenantId&channel&accessToken&listeners&cluster&timeout`:
 * stored durable messages, oldest first, as `mapToMessageVO` shows them: of every store in the
 * cluster (the Java library's), or this node's with `cluster=false`. `listeners`
 * (comma-separated event names): only messages sent in listening mode for one of them. A
 * cluster-wide page ends at most {@link MAX_LISTED} messages deep (400 beyond: narrow the filter).
 */
export async function repositoryMessages({ ctx, env }: UserCall): Promise<void> {
  if (!env.hub.hasQos) throw new SseNotFoundError(ctx.path);
  const { pageNum, pageSize } = pagingOf(ctx);
  const reach = reachOf(ctx);
  const filter: StoreFilter = {};
  for (const key of ['userId', 'tenantId', 'channel', 'accessToken'] as const) {
    const value = text(ctx, key);
    if (value !== undefined) filter[key] = value;
  }
  const listeners = text(ctx, 'listeners');
  if (listeners !== undefined)
    filter.listeners = listeners
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '');
  const offset = (pageNum - 1) * pageSize;
  const qos = env.hub.qos;
  let answer: { total: number; items: StoredEntry[]; partial: boolean };
  if (reach.cluster && env.hub.cluster !== undefined) {
    if (offset + pageSize > MAX_LISTED)
      throw new SseBadRequestError(`A cluster-wide listing pages at most ${MAX_LISTED} messages deep: narrow the filter, or cluster=false`);
    answer = await qos.listCluster(filter, offset, pageSize, reach.timeoutMs);
  } else {
    answer = { ...(await qos.list(filter, offset, pageSize)), partial: false };
  }
  const list = answer.items.map((entry) => env.options.mapToMessageVO(entry, messageView(entry)));
  ok(ctx, env, { pageNum, pageSize, total: answer.total, list, partial: answer.partial, timeout: answer.partial } satisfies Page<unknown>);
}

/**
 * `GET {base}/connect/stats.json`: live figures for the dashboard: cluster-wide counts,
 * this node's running totals (`hub.stats`), durable queue depth and the cluster's peers.
 */
export async function stats({ ctx, env }: UserCall): Promise<void> {
  const hub = env.hub;
  const [users, connections] = await Promise.all([hub.queryDetailed('userIds', []), hub.queryDetailed('connectionCount', [])]);
  const answer: AdminStats = {
    name: hub.name,
    time: Date.now(),
    users: users.value.length,
    connections: connections.value,
    partial: users.partial || connections.partial,
    local: { connections: hub.localQuery('connectionCount', []), ...hub.stats },
    qos: hub.hasQos ? { pending: hub.qos.pendingCount() } : null,
    cluster: hub.cluster === undefined ? null : { nodeId: hub.cluster.nodeId, peers: hub.cluster.peers() },
  };
  ok(ctx, env, answer);
}

/**
 * `POST {base}/connect/kick.do` with `{connectionId}` or `{userId}` (admin): closes the
 * connection(s), anywhere in the cluster, with `connect-close {reason: 'kick'}`;
 * `reconnect` (default false) says whether the client may come back by itself.
 */
export async function kick(call: UserCall): Promise<void> {
  const { ctx, env } = call;
  const body = await call.json();
  const reconnect = body.reconnect === true;
  let closed: number;
  if (typeof body.connectionId === 'string' && body.connectionId !== '') {
    closed = await env.hub.disconnectByConnectionId(body.connectionId, { reconnect });
  } else if ((typeof body.userId === 'string' && body.userId !== '') || typeof body.userId === 'number') {
    closed = await env.hub.disconnectByUserId(body.userId, { reconnect });
  } else {
    throw new SseBadRequestError('connectionId or userId is required');
  }
  ok(ctx, env, { closed });
}

/** The listing's reach, from its query string. */
function reachOf(ctx: Context): Reach {
  return reachOfParams((key) => ctx.query[key]);
}

function pagingOf(ctx: Context): { pageNum: number; pageSize: number } {
  const pageNum = int(ctx, 'pageNum', 1);
  const pageSize = int(ctx, 'pageSize', DEFAULT_PAGE_SIZE);
  if (pageNum < 1) throw new SseBadRequestError('pageNum must be >= 1');
  if (pageSize < 1 || pageSize > MAX_PAGE_SIZE) throw new SseBadRequestError(`pageSize must be 1..${MAX_PAGE_SIZE}`);
  return { pageNum, pageSize };
}

function page<T, R>(all: T[], { pageNum, pageSize }: { pageNum: number; pageSize: number }, map: (item: T) => R): Page<R> {
  const start = (pageNum - 1) * pageSize;
  return { pageNum, pageSize, total: all.length, list: all.slice(start, start + pageSize).map(map) };
}

function matchesName(user: SseUser, name: string | undefined): boolean {
  if (name === undefined) return true;
  return typeof user.name === 'string' && user.name.toLowerCase().includes(name.toLowerCase());
}

function text(ctx: Context, key: string): string | undefined {
  const value = ctx.query[key];
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === '') return undefined;
  if (v.length > 256) throw new SseBadRequestError(`${key} is too long`);
  return v;
}

function int(ctx: Context, key: string, fallback: number): number {
  const v = text(ctx, key);
  if (v === undefined) return fallback;
  if (!/^\d{1,9}$/.test(v)) throw new SseBadRequestError(`${key} must be a whole number`);
  return Number(v);
}
