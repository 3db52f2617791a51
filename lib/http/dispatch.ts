import type { Layer } from '@koa/router';
import type { Context, Next } from 'koa';
import type { Params } from './routes.js';
import { answerUnrouted, paramsOf, type RouteHandler, type SseRouter } from './router.js';

/** The plugin's way through its router, for a request under its base path. */
export type Dispatch = (ctx: Context, next: Next) => Promise<unknown>;

/** Decisions remembered per plugin: a few hundred distinct `message/*.do` paths is already a lot. */
const KNOWN_MAX = 1024;
/** Longer paths are routed afresh each time, so that the memory stays small. */
const KNOWN_PATH_MAX = 512;
const NO_PARAMS: Params = Object.freeze({});

/**
 * Answers a request under the base path: the route the router matches, else a JSON 405 or
 * 404. Mounted at the root (`base` empty), a path that no route knows goes to `next`.
 *
 * Going through the router's `routes()` cost +3…5 % server CPU on the connect path and
 * +16…24 % on POST {base}/connect/message/x.do (BENCHMARKS.md): @koa/router tests every
 * route's regexp in turn, reads `ctx.host` and composes a middleware chain per request.
 * So the router's decision for a `method path` is remembered, and one of our own routes is
 * called directly. Anything an app added to `plugin.router` goes through `routes()`.
 */
export function createDispatch({ router, handlerOf, stamp }: SseRouter, base: string): Dispatch {
  const routes = router.routes();
  const fallBack = base === '';
  const known = new Map<string, { handler: RouteHandler; params: Params }>();
  let knownFor = router.stack.length;

  return (ctx, next) => {
    const path = ctx.path;
    const method = ctx.method;
    if (knownFor !== router.stack.length) {
      // Routes were added to the router: decide afresh.
      known.clear();
      knownFor = router.stack.length;
    }
    const key = method + ' ' + path;
    const hit = known.get(key);
    if (hit !== undefined) return hit.handler(ctx, hit.params);

    const match = router.match(path, method);
    // Mounted at the root, the plugin must not swallow the app's own routes.
    if (fallBack && !match.path.some(isRoute)) return next();
    const layers = match.pathAndMethod;
    const layer = layers.length === 1 ? layers[0]! : undefined;
    const handler = layer === undefined ? undefined : handlerOf(layer);
    if (layer !== undefined && handler !== undefined) {
      const params = layer.paramNames.length === 0 ? NO_PARAMS : Object.freeze(paramsOf(layer, path));
      if (path.length <= KNOWN_PATH_MAX) {
        if (known.size >= KNOWN_MAX) known.clear();
        known.set(key, { handler, params });
      }
      return handler(ctx, params);
    }
    if (layers.length === 0) {
      stamp(ctx);
      answerUnrouted(ctx, match.path);
      return Promise.resolve();
    }
    // (The router sets `ctx.params` and `ctx.router` itself; its type expects them already.)
    return routes(ctx as Parameters<typeof routes>[0], async () => {
      stamp(ctx);
      answerUnrouted(ctx, router.match(path, method).path);
    }) as Promise<void>;
  };
}

/** A route, not a middleware layer (`router.use`). */
function isRoute(layer: Layer): boolean {
  return layer.methods.length > 0;
}
