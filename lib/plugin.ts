import type { Router } from '@koa/router';
import type Koa from 'koa';
import type { Context, Next } from 'koa';
import { isClientGoneError } from './core/errors.js';
import type { EventMap, RegisteredEvents } from './core/event-map.js';
import { Hub } from './hub.js';
import { positive } from './core/option-checks.js';
import { checkPluginOptions, type SsePluginOptions } from './http/plugin-options.js';
import { announceHub, isRegistered, registerHub } from './http/registry.js';
import { defaultWrapOkResponse } from './http/response.js';
import { defaultRedactUser } from './http/admin-views.js';
import type { EndpointEnv, EndpointOptions } from './http/endpoint.js';
import { ChannelRateLimit } from './http/channel-rate-limit.js';
import { PublishKeys, type PublishKey } from './http/publish-keys.js';
import { RequestRateLimit } from './http/request-rate-limit.js';
import { createDispatch } from './http/dispatch.js';
import { createSseRouter } from './http/router.js';
import { serverHeaders } from './http/server-headers.js';
import { clientUrl } from './http/script.js';

/** The middleware returned by {@link ssePlugin}, with its hub attached. */
export interface SsePlugin<Events extends EventMap = Record<string, unknown>> extends Koa.Middleware {
  /** The hub of this system (the same object as `ctx.sseHubs[name]`), typed by the plugin's event map. */
  readonly hub: Hub<Events>;
  /** The normalized base path, e.g. `/sse/hr`. */
  readonly basePath: string;
  /**
   * The endpoints as a `@koa/router` router, prefix the base path: for an app that routes with
   * @koa/router and mounts them in its own router instead of `app.use(plugin)`.
   *
   * Mounted so, the app's router middleware runs before the endpoints, and the endpoints
   * still answer their errors as the library's JSON. Paths under the base path that no
   * endpoint has, and wrong methods, are left to the app's router (its `allowedMethods()`
   * answers 405 with the endpoints' methods in `Allow`). `ctx.sse` / `ctx.sseHubs` work in
   * every handler from the app's first request (see {@link SsePlugin.attach}). Routes added to this router are served by `app.use(plugin)` as well.
   *
   * @example
   * const router = new Router();
   * router.get('/', home);
   * router.use(plugin.router.routes()); // {base}/connect, {base}/sse.js, ...
   * app.use(router.routes()).use(router.allowedMethods());
   */
  readonly router: Router;
  /**
   * The versioned URL of the browser client (`{base}/sse.js?v=<content hash>`, or the classic
   * script's), for pages the server renders: browsers cache it for a year, and a new build has
   * a new URL. Undefined when the client is not built. The plain `{base}/sse.js` keeps working
   * and is revalidated on every load.
   */
  clientUrl(variant?: 'module' | 'classic'): Promise<string | undefined>;
  /**
   * Makes this hub `ctx.sse` / `ctx.sseHubs[name]` of `app` now. Rarely needed: without it the
   * hub is installed by the plugin's first request, or, before that, when a handler reads
   * `ctx.sse` in an app the plugin is found mounted in (`app.use(plugin)`, or its router inside
   * a @koa/router router of the app). Call it where the plugin is mounted some other way
   * (koa-mount, a composed middleware).
   */
  attach(app: Koa): void;
  /**
   * Replaces the keys of the publish API at runtime (rotation without a restart; see
   * `PublishOptions.keys`): checked whole first, a bad list throws a TypeError and the old
   * keys stay. An empty list turns the API off; a list given to a plugin without `publish`
   * turns it on with the default limits.
   */
  setPublishKeys(keys: readonly PublishKey[]): void;
  /** Graceful shutdown (see {@link Hub.close}): clients are told to reconnect, the cluster is left, the store closed. */
  close(options?: { drainMs?: number }): Promise<void>;
}

declare module 'koa' {
  interface DefaultContext {
    /** The primary SSE hub (the plugin marked `primary`, else the first mounted), typed by the map in `SseEventRegistry`. */
    sse: Hub<RegisteredEvents>;
    /** Every mounted SSE hub by name (default name: the base path's last segment). */
    sseHubs: Record<string, Hub>;
  }
}

/**
 * Mounts a push system at `basePath`: the stream, request, upload and admin endpoints under
 * it, and `ctx.sse` / `ctx.sseHubs` for every handler of the app, before or after it, from the
 * first request (reading `ctx.sse` in an app without a plugin throws a TypeError that says what to do).
 *
 * @example
 * app.use(ssePlugin('/sse/hr', { authenticate: (ctx) => ctx.state.user ?? null }));
 * app.use(async (ctx) => { await ctx.sse.sendByUserId(7, 'bell', { count: 3 }); });
 *
 * @typeParam Events - the event map (event name → payload type) that `plugin.hub`'s send
 * methods check. `ctx.sse` is checked against the map registered in `SseEventRegistry`
 * (module augmentation, once per app), or through `typedHub<Events>(ctx)`. Default: any
 * name, any payload.
 */
export function ssePlugin<Events extends EventMap = Record<string, unknown>>(basePath: string, options: SsePluginOptions): SsePlugin<Events> {
  const base = normalizeBasePath(basePath);
  if (options === null || typeof options !== 'object') throw new TypeError('ssePlugin options are required');
  if (typeof options.authenticate !== 'function') throw new TypeError('options.authenticate must be a function');
  checkPluginOptions(options);
  const callbacks = [
    'authorizeAdmin',
    'onMessage',
    'onUpload',
    'wrapOkResponse',
    'redactUser',
    'mapToConnectionVO',
    'mapToMessageVO',
    'onUnauthorized',
    'verifyConnect',
    'onConnect',
    'authorizeChannel',
  ] as const;
  for (const key of callbacks) {
    if (options[key] !== undefined && typeof options[key] !== 'function') throw new TypeError(`options.${key} must be a function`);
  }
  const name = options.name ?? (base.split('/').filter(Boolean).pop() || 'default');
  const channelRateLimit = new ChannelRateLimit(options.channelRateLimit);
  const publish = new PublishKeys(options.publish);
  const requestRateLimit = new RequestRateLimit(options.requestRateLimit);
  const hub = new Hub<Events>({ ...options, name }, options.name !== undefined);
  const endpointOptions: EndpointOptions = {
    ...options,
    wrapOkResponse: options.wrapOkResponse ?? defaultWrapOkResponse,
    redactUser: options.redactUser ?? defaultRedactUser,
    mapToConnectionVO: options.mapToConnectionVO ?? ((_connection, view) => view),
    mapToMessageVO: options.mapToMessageVO ?? ((_entry, view) => view),
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
  const env: EndpointEnv = {
    hub,
    options: endpointOptions,
    headers: serverHeaders(hub, options.serverIdHeader),
    channelRateLimit,
    publish,
    requestRateLimit,
  };
  const bindTo = (target: Koa): void => {
    withdraw();
    if (isRegistered(target, hub)) return;
    app = target;
    registerHub(target, hub, primary);
  };
  // Until a request reaches the plugin, an app it is mounted in gets it when a handler asks for ctx.sse.
  const withdraw = announceHub(hub, (target) => isMountedIn(target, middleware, sseRouter.router), bindTo);
  const register = (ctx: Context): void => {
    if (!isRegistered(ctx.app, hub)) bindTo(ctx.app);
  };
  // Built once, not per request: the router compiles its paths here.
  const sseRouter = createSseRouter(base, env, register);
  const dispatch = createDispatch(sseRouter, base);
  const under = base + '/';

  const middleware = (ctx: Context, next: Next): Promise<unknown> => {
    register(ctx);
    const path = ctx.path;
    // Outside the base path the router is not even asked: the request reaches the app untouched.
    if (path !== base && !path.startsWith(under)) return next();
    return dispatch(ctx, next);
  };
  return Object.assign(middleware, {
    hub,
    basePath: base,
    router: sseRouter.router,
    clientUrl: (variant?: 'module' | 'classic') => clientUrl(base, variant),
    attach: (target: Koa) => {
      if (target === null || typeof target !== 'object' || typeof target.use !== 'function' || typeof target.context !== 'object') {
        throw new TypeError('plugin.attach(app) takes the Koa application');
      }
      bindTo(target);
    },
    setPublishKeys: (keys: readonly PublishKey[]) => publish.set(keys),
    close: (closeOptions?: { drainMs?: number }) => {
      withdraw();
      return hub.close(closeOptions);
    },
  });
}

/**
 * Whether `middleware`, or a @koa/router router holding `router`'s handlers (nested routers'
 * layers are copied into the parent's stack), is in the app's middleware.
 */
function isMountedIn(app: Koa, middleware: unknown, router: Router): boolean {
  const handlers = new Set<unknown>(router.stack.flatMap((layer) => layer.stack));
  type Dispatch = { router?: { stack?: { stack?: unknown[] }[] } };
  return app.middleware.some(
    (fn) => fn === middleware || ((fn as Dispatch).router?.stack?.some((layer) => layer.stack?.some((h) => handlers.has(h))) ?? false),
  );
}

/**
 * `ctx.sse` typed by an event map: `typedHub<Events>(ctx).sendByUserId(7, 'bell', payload)`
 * checks the name and the payload. The same hub object; only its type changes.
 */
export function typedHub<Events extends EventMap>(ctx: { sse: Hub }): Hub<Events> {
  return ctx.sse as unknown as Hub<Events>;
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
