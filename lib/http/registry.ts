import Koa from 'koa';
import type { Hub } from '../hub.js';

interface Registry {
  hubs: Record<string, Hub>;
  primary: Hub | undefined;
  primaryMarked: boolean;
}

/** A plugin made but not yet seen by any app: `bind` registers it on the app it is mounted in. */
interface Unbound {
  hub: Hub;
  /** Whether the plugin's middleware or its router's handlers are in `app`'s middleware. */
  mountedIn: (app: Koa) => boolean;
  bind: (app: Koa) => void;
}

const registries = new WeakMap<object, Registry>();
const unbound: Unbound[] = [];

const NOT_MOUNTED =
  'ctx.sse: no SSE plugin serves this app. Mount one with app.use(ssePlugin(...)) or its router ' +
  'in your own (`router.use(plugin.router.routes())`), or, where it is mounted some other way, ' +
  'call plugin.attach(app) at start-up';

/**
 * `ctx.sse` and `ctx.sseHubs` for every Koa app of the process, from its first request and
 * whatever runs first: Koa gives middleware no hook at `app.use` time, so a handler that runs
 * before the plugin (mounted after it, or the plugin's router inside the app's own) would
 * otherwise see `undefined`. The getters sit on Koa's shared context prototype; an app with
 * its own registry shadows them (registerHub). A plugin is bound only to an app it is found
 * mounted in (`app.middleware`, or a @koa/router router there that holds its routes): another
 * app of the same process never gets it by accident. Koa here is the app's Koa wherever npm
 * deduplicates the peer dependency; another copy still gets the hub at the plugin's first request.
 */
function installFallbackGetters(): void {
  const shared = Object.getPrototypeOf(new Koa().context) as object;
  if (Object.prototype.hasOwnProperty.call(shared, 'sse')) return;
  Object.defineProperty(shared, 'sse', {
    configurable: true,
    get(this: { app: Koa }) {
      const hub = bindUnbound(this.app)?.primary;
      if (hub === undefined) throw new TypeError(NOT_MOUNTED);
      return hub;
    },
  });
  Object.defineProperty(shared, 'sseHubs', {
    configurable: true,
    get(this: { app: Koa }) {
      return bindUnbound(this.app)?.hubs ?? (Object.create(null) as Record<string, Hub>);
    },
  });
}
installFallbackGetters();

/** Registers on `app` the plugins mounted in it that no request reached yet (in the order they were made); answers the app's registry. */
function bindUnbound(app: Koa): Registry | undefined {
  if (unbound.length > 0) {
    for (const entry of unbound.filter((e) => e.mountedIn(app))) entry.bind(app);
  }
  return registries.get(app);
}

/**
 * Announces a plugin that no app has yet: an app in whose middleware it is mounted gets it
 * (`bind`) as soon as one of its handlers asks for `ctx.sse` / `ctx.sseHubs`. Answers a function
 * that withdraws the announcement (the plugin was bound by its own first request, or closed).
 */
export function announceHub(hub: Hub, mountedIn: (app: Koa) => boolean, bind: (app: Koa) => void): () => void {
  const entry: Unbound = { hub, mountedIn, bind };
  unbound.push(entry);
  return () => {
    const i = unbound.indexOf(entry);
    if (i >= 0) unbound.splice(i, 1);
  };
}

/**
 * Makes a hub reachable from every context of `app`: `ctx.sseHubs[name]`, and `ctx.sse` for
 * the primary one (the one marked `primary`, else the first mounted). Called by each plugin
 * on its first request, on `plugin.attach(app)`, or by the getters above.
 */
export function registerHub(app: Koa, hub: Hub, primary: boolean): void {
  let reg = registries.get(app);
  if (reg === undefined) {
    const created: Registry = { hubs: Object.create(null) as Record<string, Hub>, primary: undefined, primaryMarked: false };
    reg = created;
    registries.set(app, reg);
    Object.defineProperty(app.context, 'sse', {
      configurable: true,
      get: () => {
        if (unbound.length > 0) bindUnbound(app);
        if (created.primary === undefined) throw new TypeError(NOT_MOUNTED);
        return created.primary;
      },
    });
    Object.defineProperty(app.context, 'sseHubs', {
      configurable: true,
      get: () => {
        // A second plugin mounted inside the app's router may not have seen a request yet.
        if (unbound.length > 0) bindUnbound(app);
        return created.hubs;
      },
    });
  }
  const existing = reg.hubs[hub.name];
  if (existing === hub) return;
  if (existing !== undefined) {
    throw new TypeError(`Two SSE plugins in one app are named "${hub.name}": give each a distinct \`name\` option`);
  }
  if (primary && reg.primaryMarked) throw new TypeError('Only one SSE plugin may be marked primary');
  reg.hubs[hub.name] = hub;
  if (primary) {
    reg.primary = hub;
    reg.primaryMarked = true;
  } else if (reg.primary === undefined) {
    reg.primary = hub;
  }
}

/** Whether `hub` is already registered on `app` (the fast path of every request). */
export function isRegistered(app: Koa, hub: Hub): boolean {
  return registries.get(app)?.hubs[hub.name] === hub;
}
