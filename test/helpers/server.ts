import type { ExecutionContext } from 'ava';
import Koa from 'koa';
import type { Context } from 'koa';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { ssePlugin, type SsePlugin, type SsePluginOptions, type SseUser } from '../../lib/index.js';

/** Test login: `access-token` query parameter, `<userId>` or `<userId>@<tenantId>`; `admin` is admin. */
export function tokenUser(ctx: Context): SseUser | null {
  const token = ctx.query['access-token'];
  if (typeof token !== 'string' || token === '') return null;
  const [id, tenantId] = token.split('@');
  if (id === 'anon') return { accessToken: token, tenantId: tenantId || null };
  return { id, tenantId: tenantId || null, accessToken: token, name: `User ${id}`, secret: 'do-not-leak' };
}

export interface Started {
  app: Koa;
  server: Server;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** Errors the app reported through `app.emit('error')`. */
  errors: unknown[];
}

/** Listens on a random loopback port; closed (streams too) when the test ends. */
export async function listen(t: ExecutionContext, app: Koa): Promise<Started> {
  const errors: unknown[] = [];
  app.silent = true;
  app.on('error', (err: unknown) => errors.push(err));
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { app, server, origin: `http://127.0.0.1:${port}`, errors };
}

export interface StartedPlugin extends Started {
  plugin: SsePlugin;
  /** `origin + base` */
  base: string;
}

/**
 * A Koa app with one plugin at `/sse/test` named `test` (login by {@link tokenUser}, `admin`
 * is admin, `onMessage` echoes) plus any extra middleware, listening on loopback. The name is
 * given, as the Redis engine requires: nodes of one test on one Redis are one cluster.
 */
export async function startPlugin(
  t: ExecutionContext,
  options: Partial<SsePluginOptions> = {},
  extra?: (app: Koa, plugin: SsePlugin) => void,
): Promise<StartedPlugin> {
  const app = new Koa();
  const plugin = ssePlugin('/sse/test', {
    name: 'test',
    authenticate: tokenUser,
    authorizeAdmin: (_ctx, user) => user.id === 'admin',
    onMessage: (path, _ctx, connection, body) => ({ path, body, connectionId: connection.id }),
    onUpload: (path, _ctx, _connection, fields, files) => ({
      path,
      fields,
      files: files.map((f) => ({ field: f.fieldName, name: f.filename, size: f.size, type: f.mimeType, text: f.data.toString('utf8').slice(0, 32) })),
    }),
    ...options,
  });
  app.use(plugin);
  extra?.(app, plugin);
  t.teardown(() => plugin.close());
  const started = await listen(t, app);
  return { ...started, plugin, base: `${started.origin}/sse/test` };
}

/** POST JSON with fetch; answers status and parsed body. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** GET JSON with fetch. */
export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
