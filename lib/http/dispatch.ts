import type { Layer } from '@koa/router';
import type { Context, Next } from 'koa';
import { answerUnrouted, type SseRouter } from './router.js';

/** The plugin's way through its router, for a request under its base path. */
export type Dispatch = (ctx: Context, next: Next) => Promise<unknown>;

/**
 * Answers a request under the base path: the route the router matches, else a JSON 405 or
 * 404. Mounted at the root (`base` empty), a path that no route knows goes to `next`.
 */
export function createDispatch({ router }: SseRouter, base: string): Dispatch {
  const routes = router.routes();
  const fallBack = base === '';
  return (ctx, next) => {
    const path = ctx.path;
    // Mounted at the root, the plugin must not swallow the app's own routes.
    if (fallBack && !router.match(path, ctx.method).path.some(isRoute)) return next();
    // (The router sets `ctx.params` and `ctx.router` itself; its type expects them already.)
    return routes(ctx as Parameters<typeof routes>[0], async () => answerUnrouted(ctx, router.match(path, ctx.method).path));
  };
}

/** A route, not a middleware layer (`router.use`). */
function isRoute(layer: Layer): boolean {
  return layer.methods.length > 0;
}
