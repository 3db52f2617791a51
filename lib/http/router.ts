import { Router, type Layer, type RouterMiddleware } from '@koa/router';
import type { Context } from 'koa';
import { isClientGoneError, SseForbiddenError, SseMethodNotAllowedError, SseNotFoundError, SseUnauthorizedError } from '../core/errors.js';
import type { SseUser } from '../core/user.js';
import { EndpointCall } from './call.js';
import { requireAdmin, requireUserNow, type EndpointEnv } from './endpoint.js';
import { runAnsweringHook } from './hooks.js';
import { sendError } from './response.js';
import { ROUTES, validParams, type Method, type Params, type Route } from './routes.js';
import type { StampHeaders } from './server-headers.js';

/** Runs one route's endpoint; answers its errors as the library's JSON. */
export type RouteHandler = (ctx: Context, params: Params) => Promise<void>;

/** A plugin's router, and the endpoint behind each of its route layers. */
export interface SseRouter {
  /** The endpoints under the prefix `base`: see `SsePlugin.router`. */
  readonly router: Router;
  /** The handler of one of this router's route layers; undefined for a layer added later by an app. */
  handlerOf: (layer: Layer) => RouteHandler | undefined;
  /** Sets the headers every answer of the plugin carries (`X-Sse-Version`, the server id). */
  stamp: StampHeaders;
}

/**
 * Builds the router of the endpoints at `base`. Each route answers its errors itself, so
 * that the router behaves the same when an app mounts it in its own router. Every request is
 * admitted by its route's declared `access` ({@link admit}) before the route's handler runs.
 *
 * @param onRequest runs first on every request a route answers (registers the hub).
 */
export function createSseRouter(base: string, env: EndpointEnv, onRequest: (ctx: Context) => void): SseRouter {
  // Case-sensitive, and a trailing slash is another path, as the endpoints have always been.
  const router = new Router({ prefix: literalPath(base), sensitive: true, strict: true });
  const handlers = new WeakMap<Layer, RouteHandler>();
  const stamp = env.headers.stamp;
  for (const route of ROUTES) {
    const opensStream = route.opensStream === true;
    const handler: RouteHandler = async (ctx, params) => {
      onRequest(ctx);
      if (!opensStream) stamp(ctx);
      try {
        const admitted = admit(route, ctx, env, params);
        // A synchronous `authenticate` admits a stream without a promise (the connect path).
        const call = admitted instanceof Promise ? await admitted : admitted;
        // The route's access decides which call interface its handler declared (routes.ts).
        await (route.handle as (call: EndpointCall) => Promise<void>)(call);
      } catch (err) {
        refuseUnreadBody(ctx);
        // A backend with a bad API key gets the API's 401, not the app's login answer.
        await answerFailure(ctx, env, err, route.javaErrorData, route.access === 'api-key');
      }
      // A stream's head carried them; any other answer of that route gets them here.
      if (opensStream && !ctx.res.headersSent) stamp(ctx);
    };
    const middleware: RouterMiddleware = (ctx) => handler(ctx, ctx.params);
    const first = router.stack.length;
    if (route.methods.includes('GET')) router.get(route.path, middleware);
    if (route.methods.includes('POST')) router.post(route.path, middleware);
    for (const layer of router.stack.slice(first)) {
      // @koa/router adds HEAD to every GET route; here it stays only where listed: a HEAD on
      // /connect would open a stream that nobody reads.
      layer.methods = layer.methods.filter((m) => route.methods.includes(m as Method));
      handlers.set(layer, handler);
    }
  }
  return { router, handlerOf: (layer) => handlers.get(layer), stamp };
}

/**
 * Checks what `route` declares before its handler can run, in this order: the endpoint exists
 * (`available`, the path parameters: else 404), the caller passes `access` (401 / 403), the
 * app's `authorizeEndpoint` allows it (403), and for a route acting on the caller's
 * connection named in the query, that it is theirs (403).
 * Nothing here reads the request body.
 */
function admit(route: Route, ctx: Context, env: EndpointEnv, params: Params): EndpointCall | Promise<EndpointCall> {
  if ((route.available !== undefined && !route.available(env)) || !validParams(params)) {
    throw new SseNotFoundError(ctx.path);
  }
  switch (route.access) {
    case 'public':
    case 'connection-id':
      return permitted(route, ctx, env, null, () => new EndpointCall(ctx, env, params, undefined));
    case 'user': {
      const user = requireUserNow(ctx, env);
      // No closure named per request: under a loader that keeps function names (tsx,
      // esbuild's keepNames) each costs a defineProperty, ~5 % of the connect path there.
      return user instanceof Promise ? user.then((u) => admitUser(route, ctx, env, params, u)) : admitUser(route, ctx, env, params, user);
    }
    case 'admin':
      return requireAdmin(ctx, env).then((user: SseUser) => permitted(route, ctx, env, user, () => new EndpointCall(ctx, env, params, user)));
    case 'api-key': {
      const key = env.publish.authenticate(ctx.get('authorization'));
      return env.publish
        .admit(key, route.need, env.hub.name)
        .then(() => permitted(route, ctx, env, null, () => new EndpointCall(ctx, env, params, undefined, key)));
    }
  }
}

/** A caller known as `user`: the app's `authorizeEndpoint`, then the connection the route acts on. */
function admitUser(route: Route, ctx: Context, env: EndpointEnv, params: Params, user: SseUser): EndpointCall | Promise<EndpointCall> {
  return permitted(route, ctx, env, user, () => withConnection(route, new EndpointCall(ctx, env, params, user)));
}

/**
 * The app's `authorizeEndpoint` (the Java `hasPermission`), for every route once its own
 * access passed, then `next`; without the hook, or with a synchronous answer, no promise.
 */
function permitted<T>(route: Route, ctx: Context, env: EndpointEnv, user: SseUser | null, next: () => T | Promise<T>): T | Promise<T> {
  const hook = env.options.authorizeEndpoint;
  if (hook === undefined) return next();
  const check = (allowed: boolean): T | Promise<T> => {
    if (allowed !== true) throw new SseForbiddenError('Not permitted');
    return next();
  };
  const answer = hook(ctx, user, { route: route.path, method: ctx.method, access: route.access });
  // Any thenable an app's hook answers is awaited; anything else is the answer itself.
  return typeof (answer as { then?: unknown } | null)?.then === 'function' ? Promise.resolve(answer).then(check) : check(answer as boolean);
}

/** The caller's own connection, when the route acts on one that the query names; before any body is read. */
function withConnection(route: Route, call: EndpointCall): EndpointCall | Promise<EndpointCall> {
  const connection = route.connection;
  if (connection === undefined) return call;
  // 'query-or-body': the body may name it instead (read by the handler, after this).
  const named = call.ctx.query.connectionId;
  if (connection === 'query-or-body' && (named === undefined || named === '')) return call;
  return call.ownConnection().then(() => call);
}

/**
 * A request refused before its body was read: the answer closes the connection, so that
 * Node does not go on reading (and discarding) a body the client may trickle for minutes.
 */
function refuseUnreadBody(ctx: Context): void {
  const req = ctx.req;
  if (req.complete || ctx.res.headersSent) return;
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) ctx.set('Connection', 'close');
}

/** `path` as plain text for path-to-regexp, in which `:`, `*`, `{`, `(`, ... have meanings. */
function literalPath(path: string): string {
  return path.replace(/[{}()[\]+?!:*\\]/g, '\\$&');
}

/** A route layer's parameters for `path` (which it matches). */
export function paramsOf(layer: Layer, path: string): Params {
  return layer.params(path, layer.captures(path));
}

/**
 * Answers a request that no route took: 405 with the methods of the routes at its path
 * (`samePath`, as the router matched them) in `Allow`, else 404; both as JSON.
 */
export function answerUnrouted(ctx: Context, samePath: readonly Layer[]): void {
  const path = ctx.path;
  const allow: string[] = [];
  for (const layer of samePath) {
    if (layer.paramNames.length > 0 && !validParams(paramsOf(layer, path))) continue;
    for (const method of layer.methods) if (!allow.includes(method)) allow.push(method);
  }
  answerError(ctx, allow.length > 0 ? new SseMethodNotAllowedError(allow) : new SseNotFoundError(path));
}

/** Answers an endpoint's error; a missing user through the app's `onUnauthorized` when it has one. */
async function answerFailure(
  ctx: Context,
  env: EndpointEnv,
  err: unknown,
  javaData: Readonly<Record<string, unknown>> | undefined,
  apiKey: boolean,
): Promise<void> {
  const onUnauthorized = apiKey ? undefined : env.options.onUnauthorized;
  if (err instanceof SseUnauthorizedError && onUnauthorized !== undefined) {
    try {
      if ((await runAnsweringHook(ctx, () => onUnauthorized(ctx))).answered) return;
    } catch (hookErr) {
      answerError(ctx, hookErr, javaData);
      return;
    }
  }
  answerError(ctx, err, javaData);
}

function answerError(ctx: Context, err: unknown, javaData?: Readonly<Record<string, unknown>>): void {
  sendError(
    ctx,
    err,
    (e) => {
      if (!isClientGoneError(e)) ctx.app.emit('error', e, ctx);
    },
    javaData,
  );
}
