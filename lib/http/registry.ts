import type Koa from 'koa';
import type { Hub } from '../hub.js';

interface Registry {
  hubs: Record<string, Hub>;
  primary: Hub | undefined;
  primaryMarked: boolean;
}

const registries = new WeakMap<object, Registry>();

/**
 * Makes a hub reachable from every context of `app`: `ctx.sseHubs[name]`, and `ctx.sse` for
 * the primary one (the one marked `primary`, else the first mounted). Called by each plugin
 * on its first request: Koa gives middleware no hook at `app.use` time.
 */
export function registerHub(app: Koa, hub: Hub, primary: boolean): void {
  let reg = registries.get(app);
  if (reg === undefined) {
    const created: Registry = { hubs: Object.create(null) as Record<string, Hub>, primary: undefined, primaryMarked: false };
    reg = created;
    registries.set(app, reg);
    Object.defineProperty(app.context, 'sse', { configurable: true, get: () => created.primary });
    Object.defineProperty(app.context, 'sseHubs', { configurable: true, get: () => created.hubs });
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
