import type Koa from 'koa';
import type { Context, Next } from 'koa';
import { isClientGoneError, SseMethodNotAllowedError, SseNotFoundError } from './core/errors.js';
import { Hub } from './hub.js';
import { positive } from './core/option-checks.js';
import type { SsePluginOptions } from './http/plugin-options.js';
import { isRegistered, registerHub } from './http/registry.js';
import { defaultWrapOkResponse, sendError } from './http/response.js';
import { ack } from './http/ack.js';
import { connections, defaultRedactUser, kick, repositoryMessages, stats, users } from './http/admin.js';
import { dashboard } from './http/dashboard.js';
import { disconnect } from './http/disconnect.js';
import type { Endpoint, EndpointEnv, EndpointOptions } from './http/endpoint.js';
import { addListener, removeListener } from './http/listeners.js';
import { message, upload } from './http/requests.js';
import { script } from './http/script.js';
import { connect } from './http/stream.js';

/** The middleware returned by {@link ssePlugin}, with its hub attached. */
export interface SsePlugin extends Koa.Middleware {
  /** The hub of this system (the same object as `ctx.sseHubs[name]`). */
  readonly hub: Hub;
  /** The normalized base path, e.g. `/sse/hr`. */
  readonly basePath: string;
  /** Graceful shutdown (see {@link Hub.close}): clients are told to reconnect, the cluster is left, the store closed. */
  close(options?: { drainMs?: number }): Promise<void>;
}

declare module 'koa' {
  interface DefaultContext {
    /** The primary SSE hub (the plugin marked `primary`, else the first mounted). */
    sse: Hub;
    /** Every mounted SSE hub by name (default name: the base path's last segment). */
    sseHubs: Record<string, Hub>;
  }
}

const ROUTES: Record<string, Record<string, Endpoint>> = {
  '/': { GET: script, HEAD: script },
  '/sse.js': { GET: script, HEAD: script },
  '/connect': { GET: connect, POST: connect },
  '/connect/addListener.do': { POST: addListener },
  '/connect/removeListener.do': { POST: removeListener },
  '/connect/disconnect.do': { POST: disconnect },
  '/connect/users.json': { GET: users },
  '/connect/connections.json': { GET: connections },
  '/connect/ack.do': { POST: ack },
  '/connect/repositoryMessages.json': { GET: repositoryMessages },
  '/connect/stats.json': { GET: stats },
  '/connect/kick.do': { POST: kick },
  '/dashboard': { GET: dashboard },
};
const MESSAGE_PREFIX = '/connect/message/';
const UPLOAD_PREFIX = '/connect/upload/';
const APP_PATH = /^[\w\-./]{1,200}$/;

/**
 * Mounts a push system at `basePath`: the stream, request, upload and admin endpoints under
 * it, and `ctx.sse` / `ctx.sseHubs` for every handler after it.
 *
 * @example
 * app.use(ssePlugin('/sse/hr', { authenticate: (ctx) => ctx.state.user ?? null }));
 * app.use(async (ctx) => { await ctx.sse.sendByUserId(7, 'bell', { count: 3 }); });
 */
export function ssePlugin(basePath: string, options: SsePluginOptions): SsePlugin {
  const base = normalizeBasePath(basePath);
  if (options === null || typeof options !== 'object') throw new TypeError('ssePlugin options are required');
  if (typeof options.authenticate !== 'function') throw new TypeError('options.authenticate must be a function');
  for (const key of ['authorizeAdmin', 'onMessage', 'onUpload', 'wrapOkResponse', 'redactUser'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function') throw new TypeError(`options.${key} must be a function`);
  }
  const name = options.name ?? (base.split('/').filter(Boolean).pop() || 'default');
  const hub = new Hub({ ...options, name });
  const endpointOptions: EndpointOptions = {
    ...options,
    wrapOkResponse: options.wrapOkResponse ?? defaultWrapOkResponse,
    redactUser: options.redactUser ?? defaultRedactUser,
    jsonLimit: positive(options.jsonLimit, 'jsonLimit', 1024 * 1024),
    uploadLimit: positive(options.uploadLimit, 'uploadLimit', 10 * 1024 * 1024),
    uploadMaxFiles: positive(options.uploadMaxFiles, 'uploadMaxFiles', 20),
    adminOrigins: originsOf(options.adminOrigins),
  };
  const primary = options.primary === true;
  let app: Koa | undefined;
  const report = (err: unknown): void => {
    if (isClientGoneError(err)) return;
    if (app !== undefined) app.emit('error', err);
    else console.error(err);
  };
  hub.on('error', report);
  const env: EndpointEnv = { hub, options: endpointOptions };

  const middleware = async (ctx: Context, next: Next): Promise<void> => {
    if (!isRegistered(ctx.app, hub)) {
      app = ctx.app;
      registerHub(ctx.app, hub, primary);
    }
    const path = ctx.path;
    if (path !== base && !path.startsWith(base + '/')) return next();
    const sub = path.slice(base.length) || '/';
    // Mounted at the root, the plugin must not swallow the app's own routes.
    if (base === '' && !isOwnPath(sub)) return next();
    try {
      await dispatch(ctx, env, sub);
    } catch (err) {
      sendError(ctx, err, (e) => {
        if (!isClientGoneError(e)) ctx.app.emit('error', e, ctx);
      });
    }
  };
  return Object.assign(middleware, {
    hub,
    basePath: base,
    close: (closeOptions?: { drainMs?: number }) => hub.close(closeOptions),
  });
}

async function dispatch(ctx: Context, env: EndpointEnv, sub: string): Promise<void> {
  const route = ROUTES[sub];
  if (route !== undefined) {
    const endpoint = route[ctx.method];
    if (endpoint === undefined) throw new SseMethodNotAllowedError(Object.keys(route));
    return endpoint(ctx, env);
  }
  for (const [prefix, handle] of [[MESSAGE_PREFIX, message], [UPLOAD_PREFIX, upload]] as const) {
    if (!sub.startsWith(prefix) || !sub.endsWith('.do')) continue;
    const appPath = sub.slice(prefix.length, -'.do'.length);
    if (!APP_PATH.test(appPath) || appPath.includes('..')) break;
    if (ctx.method !== 'POST') throw new SseMethodNotAllowedError(['POST']);
    return handle(ctx, env, appPath);
  }
  throw new SseNotFoundError(ctx.path);
}

function isOwnPath(sub: string): boolean {
  return ROUTES[sub] !== undefined || sub.startsWith(MESSAGE_PREFIX) || sub.startsWith(UPLOAD_PREFIX);
}

function normalizeBasePath(basePath: string): string {
  if (typeof basePath !== 'string' || !basePath.startsWith('/')) {
    throw new TypeError(`basePath must be a string starting with "/", got ${JSON.stringify(basePath)}`);
  }
  if (/[?#\s]/.test(basePath)) throw new TypeError(`basePath must be a plain path, got ${JSON.stringify(basePath)}`);
  return basePath.replace(/\/+$/, '');
}

function originsOf(value: string[] | undefined): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((o) => typeof o === 'string' && /^https?:\/\/[^/?#\s]+$/.test(o))) {
    throw new TypeError('adminOrigins must be an array of origins like "https://admin.example.com"');
  }
  return [...value];
}
