import { Router } from '@koa/router';
import parse from 'co-body';
import Koa from 'koa';
import type { Context } from 'koa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  collectMetrics,
  ssePlugin,
  typedHub,
  type ClusterOptions,
  type QosOptions,
  type SsePlugin,
  type SseUser,
  type WorkerContext,
} from '../lib/index.js';
import type { Events, Notify } from './events.js';

/**
 * The demo app: two systems (`/sse/hr`, `/sse/hunter`), a page at `/`, and `POST /api/notify`.
 * Channels: any logged-in user may join `room:<anything>` (every other channel is denied),
 * and members of a room see its live presence (`sse-presence`).
 * Demo login: `access-token` query parameter or cookie, `<userId>` or `<userId>@<tenantId>`;
 * the user `admin` is the only admin. Never use this login scheme for real.
 */
export interface ExampleApp {
  app: Koa;
  /** Untyped: the demo's admin form sends any event name; the room posts are typed (`notifyRoom`). */
  plugins: Record<'hr' | 'hunter', SsePlugin>;
}

export function demoUser(ctx: Context): SseUser | null {
  const param = ctx.query['access-token'];
  // A repeated parameter is a client mistake, not a login (and not a 500).
  if (Array.isArray(param)) ctx.throw(400, 'access-token given more than once');
  const token = param ?? ctx.cookies.get('access-token');
  if (!token || token.length > 128) return null;
  const [id, tenantId] = token.split('@');
  if (!id) return null;
  return { id, tenantId: tenantId || null, accessToken: token, name: id === 'admin' ? 'Administrator' : `User ${id}` };
}

function isAdmin(user: SseUser): boolean {
  return user.id === 'admin';
}

/** The demo's rooms: `room:<anything>`. */
function isRoom(channel: string): boolean {
  return channel.startsWith('room:');
}

/** Options of the demo. */
export interface ExampleOptions {
  /** Folder of the durable queues (`hr-qos.db`, `hunter-qos.db`). Default `./data`, or env SSE_DATA_DIR. */
  dataDir?: string;
  /** Environment to read the cluster settings from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * This process is a worker of `startWorkers` (SSE_WORKERS): both systems join the cluster
   * of this machine's workers (and the LAN or Redis one the environment gives), each with
   * its own durable file per worker slot. Default: none (one process).
   */
  worker?: WorkerContext;
}

/**
 * Cluster settings of one system from the environment, or undefined (single node) when
 * SSE_CLUSTER_SECRET is not set. With SSE_NODE_PORT the hunter system uses the next port of
 * each node (and of each peer); without it both listen on a random port, printed at start,
 * and peers are given at run time with `POST /api/cluster/peers`.
 */
export function clusterFromEnv(env: NodeJS.ProcessEnv, portOffset: number): ClusterOptions | undefined {
  const secret = env.SSE_CLUSTER_SECRET;
  if (!secret) return undefined;
  const discovery = env.SSE_DISCOVERY ?? 'static';
  if (discovery !== 'static' && discovery !== 'mdns') throw new TypeError('SSE_DISCOVERY must be static or mdns');
  const port = Number(env.SSE_NODE_PORT ?? 0);
  const peers = (env.SSE_PEERS ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((peer) => {
      const i = peer.lastIndexOf(':');
      return `${peer.slice(0, i)}:${Number(peer.slice(i + 1)) + portOffset}`;
    });
  return {
    secret,
    discovery,
    peers,
    // Unset: the library's default (every address; the default route's one is announced).
    ...(env.SSE_NODE_HOST ? { host: env.SSE_NODE_HOST } : {}),
    port: port === 0 ? 0 : port + portOffset,
  };
}

/**
 * With SSE_REDIS_URL (`redis://host:port`), both systems join their cluster and keep their
 * durable queues through that Redis: no secret, no peer list, no SQLite file. Each system
 * keeps its own keys there (the prefix defaults to the hub's name). Undefined without it.
 */
export function redisFromEnv(env: NodeJS.ProcessEnv): { cluster: ClusterOptions; qos: QosOptions } | undefined {
  const redis = env.SSE_REDIS_URL;
  if (!redis) return undefined;
  if (!/^rediss?:\/\//.test(redis)) throw new TypeError('SSE_REDIS_URL must be a redis:// or rediss:// URL');
  return { cluster: { redis }, qos: { redis } };
}

export function createExampleApp(options: ExampleOptions = {}): ExampleApp {
  const app = new Koa();
  const env = options.env ?? process.env;
  const dataDir = options.dataDir ?? env.SSE_DATA_DIR ?? './data';
  const hrDb = env.SSE_DB ?? join(dataDir, 'hr-qos.db');
  const hunterDb = env.SSE_DB ? `${env.SSE_DB}.hunter` : join(dataDir, 'hunter-qos.db');
  // Redis, when given, replaces both the LAN cluster settings and the SQLite files.
  const redis = redisFromEnv(env);
  const worker = options.worker;
  // A worker's hr node takes SSE_NODE_PORT + slot - 1: hunter's start after all of them.
  let hrCluster = redis?.cluster ?? clusterFromEnv(env, 0);
  let hunterCluster = redis?.cluster ?? clusterFromEnv(env, worker?.workers ?? 1);
  let hrQos = redis?.qos ?? { file: hrDb };
  let hunterQos = redis?.qos ?? { file: hunterDb };
  if (worker !== undefined) {
    hrCluster = worker.cluster(hrCluster);
    hunterCluster = worker.cluster(hunterCluster);
    hrQos = worker.qos(hrQos);
    hunterQos = worker.qos(hunterQos);
  }
  const common = {
    authenticate: demoUser,
    // A page may join any room, at runtime or as its fixed `channel`; every other channel is
    // denied (a join as it would be without the hook; a fixed channel refuses the stream).
    authorizeChannel: (_ctx: Context, _user: SseUser, channel: string) => isRoom(channel),
    presence: { notifyMembers: isRoom },
    authorizeAdmin: (_ctx: Context, user: SseUser) => isAdmin(user),
    onMessage: async (path: string, _ctx: Context, connection: { send(e: string, d: unknown): Promise<boolean> }, body: unknown) => {
      if (path === 'echo') {
        await connection.send('echo', body);
        return body;
      }
      return { path, received: body };
    },
    onUpload: (path: string, _ctx: Context, _c: unknown, fields: Record<string, unknown>, files: { filename: string; size: number }[]) =>
      path === 'files' ? { fields, files: files.map((f) => ({ name: f.filename, size: f.size })) } : { path },
  };
  const plugins = {
    // Named: on Redis the name keeps each system's keys apart (sse:hr, sse:hunter).
    hr: ssePlugin('/sse/hr', { ...common, name: 'hr', primary: true, qos: hrQos, ...(hrCluster ? { cluster: hrCluster } : {}) }),
    hunter: ssePlugin('/sse/hunter', { ...common, name: 'hunter', qos: hunterQos, ...(hunterCluster ? { cluster: hunterCluster } : {}) }),
  };
  // The plugins come first: they install ctx.sse / ctx.sseHubs for every route below.
  app.use(plugins.hr);
  app.use(plugins.hunter);
  const metrics = collectMetrics([plugins.hr.hub, plugins.hunter.hub]);

  const router = new Router();
  router.get(['/', '/index.html'], async (ctx) => {
    ctx.type = 'html';
    ctx.body = await readFile(new URL('./public/index.html', import.meta.url), 'utf8');
  });
  router.get('/metrics', async (ctx) => {
    // Prometheus text format. Keep it off the public internet (or behind auth) in a real app.
    const { registry } = await metrics;
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  for (const [path, handle] of [
    ['/api/notify', notify],
    ['/api/cluster/peers', setPeers],
  ] as const) {
    router.post(path, (ctx) => clientErrorsAsJson(ctx, handle));
  }
  // allowedMethods: 405 with Allow (e.g. GET /api/notify), 501 for unknown methods.
  app.use(router.routes()).use(router.allowedMethods());
  return { app, plugins };
}

/** Client mistakes answer JSON `{error}` with their 4xx status; anything else is a bug for app.on('error'). */
async function clientErrorsAsJson(ctx: Context, handle: (ctx: Context) => Promise<void>): Promise<void> {
  try {
    await handle(ctx);
  } catch (err) {
    const e = err as { status?: number; expose?: boolean; message?: string };
    if (!e.expose) throw err;
    ctx.status = e.status ?? 400;
    ctx.body = { error: e.message };
  }
}

/** A user's post to a room: `{system?, channel: 'room:…', text}` → event `notify` to its members. */
async function notifyRoom(ctx: Context, user: SseUser): Promise<void> {
  const body = (await userJson(ctx, false)) as { system?: unknown; channel?: unknown; text?: unknown } | null;
  if (body === null || typeof body !== 'object') ctx.throw(400, 'the body must be a JSON object');
  const { channel, text } = body;
  if (typeof channel !== 'string' || !isRoom(channel) || channel.length > 256) ctx.throw(403, 'only an admin may send outside a room:… channel');
  if (typeof text !== 'string' || text.length === 0 || text.length > 2000) ctx.throw(400, 'text must be 1-2000 characters');
  const system = body.system ?? 'hr';
  if (system !== 'hr' && system !== 'hunter') ctx.throw(400, 'unknown system');
  const payload: Notify = { channel, text, from: String(user.name ?? user.id) };
  // ctx.sseHubs is untyped; typedHub checks the event name and payload against the shared map.
  const hub = typedHub<Events>({ sse: ctx.sseHubs[system]! });
  ctx.body = { count: await hub.sendByChannel(channel, 'notify', payload) };
}

interface NotifyBody {
  system?: 'hr' | 'hunter';
  userId?: string | number;
  tenantId?: string | number;
  channel?: string;
  accessToken?: string;
  all?: boolean;
  /** Durable: stored in SQLite, resent until acknowledged (users, tokens) or replayable (groups). */
  qos?: boolean;
  event?: string;
  data?: unknown;
}

/**
 * `POST /api/cluster/peers` (admin only), `{system?, peers: ["host:port", …]}`: replaces the
 * static peer list of one system's cluster node (new peers are probed at once, removed ones
 * dropped). For nodes on random ports, whose addresses are known only once they listen.
 */
async function setPeers(ctx: Context): Promise<void> {
  const body = (await adminJson(ctx)) as { system?: 'hr' | 'hunter'; peers?: unknown };
  const cluster = ctx.sseHubs[body.system ?? 'hr']?.cluster;
  if (!cluster) ctx.throw(400, 'unknown system, or not a cluster');
  try {
    cluster.setPeers(body.peers as string[]);
  } catch (err) {
    if (err instanceof TypeError) ctx.throw(400, err.message);
    throw err;
  }
  ctx.body = { peers: body.peers };
}

/** The JSON body of an admin request; throws 405, 401, 403 or 400. */
async function adminJson(ctx: Context): Promise<unknown> {
  return userJson(ctx, true);
}

/** The JSON body of a logged-in user's request (an admin's, with `admin`); throws 405, 401, 403 or 400. */
async function userJson(ctx: Context, admin: boolean): Promise<unknown> {
  if (ctx.method !== 'POST') ctx.throw(405);
  const user = demoUser(ctx);
  if (!user) ctx.throw(401, 'login required');
  if (admin && !isAdmin(user)) ctx.throw(403, 'admin only');
  try {
    return await parse.json(ctx.req, { limit: '1mb' });
  } catch {
    ctx.throw(400, 'malformed JSON');
  }
}

/**
 * `POST /api/notify`: an admin pushes `event` to the given target and gets `{count}`. Any
 * logged-in user may post to a room: `{channel: 'room:1', text}` sends the typed event
 * `notify` to the room's members, wherever they are connected.
 */
async function notify(ctx: Context): Promise<void> {
  const user = demoUser(ctx);
  if (user !== null && !isAdmin(user)) return notifyRoom(ctx, user);
  const body = (await adminJson(ctx)) as NotifyBody;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) ctx.throw(400, 'the body must be a JSON object');
  const hub = ctx.sseHubs[body.system ?? 'hr'];
  if (!hub) ctx.throw(400, 'unknown system');
  // Checked here so that a client's mistake is its 400, never the library's TypeError (a 500).
  if (typeof body.event !== 'string' || !/^[^\r\n\0]{1,200}$/.test(body.event))
    ctx.throw(400, 'event must be 1-200 characters without CR, LF or NUL');
  for (const key of ['userId', 'tenantId'] as const) {
    const v = body[key];
    if (v !== undefined && !(typeof v === 'string' ? v !== '' : typeof v === 'number' && Number.isFinite(v)))
      ctx.throw(400, `${key} must be a string or a number`);
  }
  for (const key of ['channel', 'accessToken', 'system'] as const) {
    if (body[key] !== undefined && typeof body[key] !== 'string') ctx.throw(400, `${key} must be a string`);
  }
  const { event, data } = body;
  if (body.qos) {
    const q = hub.qos;
    if (body.all) ctx.body = await q.sendAll(event, data);
    else if (body.userId !== undefined) ctx.body = await q.sendByUserId(body.userId, event, data);
    else if (body.tenantId !== undefined) ctx.body = await q.sendByTenantId(body.tenantId, event, data);
    else if (body.channel !== undefined) ctx.body = await q.sendByChannel(body.channel, event, data);
    else if (body.accessToken !== undefined) ctx.body = await q.sendByAccessToken(body.accessToken, event, data);
    else ctx.throw(400, 'one of all, userId, tenantId, channel, accessToken is required');
    return;
  }
  let count: number;
  if (body.all) count = await hub.sendAll(event, data);
  else if (body.userId !== undefined) count = await hub.sendByUserId(body.userId, event, data);
  else if (body.tenantId !== undefined) count = await hub.sendByTenantId(body.tenantId, event, data);
  else if (body.channel !== undefined) count = await hub.sendByChannel(body.channel, event, data);
  else if (body.accessToken !== undefined) count = await hub.sendByAccessToken(body.accessToken, event, data);
  else ctx.throw(400, 'one of all, userId, tenantId, channel, accessToken is required');
  ctx.body = { count };
}
