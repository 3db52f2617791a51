/**
 * Shared set-up of the browser tests: one headless Chromium per test file, launched only
 * inside the loopback-only network namespace that `scripts/test.mjs` creates, a test server
 * with two systems, and pages with visibility emulation and timer / listener / beacon
 * instrumentation installed before any page script runs.
 */
import test, { type ExecutionContext, type TestFn } from 'ava';
import Koa from 'koa';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ssePlugin, type Connection, type Hub, type SsePlugin, type SsePluginOptions } from '../../lib/index.js';
import { listen, tokenUser, type Started } from '../helpers/server.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Why Chromium tests cannot run here, or undefined when they can. */
export const skipReason: string | undefined = (() => {
  if (!process.env.SSE_BROWSER_NETNS) {
    return (
      'browser tests run only inside the loopback-only network namespace that `node scripts/test.mjs` creates, ' +
      `which needs root${process.env.SSE_BROWSER_SKIP ? ` (${process.env.SSE_BROWSER_SKIP})` : ''}`
    );
  }
  const interfaces = Object.keys(networkInterfaces()).filter((name) => name !== 'lo');
  if (interfaces.length > 0) return `refusing to start Chromium: not in a loopback-only network namespace (${interfaces.join(', ')})`;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`;
  return undefined;
})();

if (skipReason !== undefined) console.error(`# browser tests skipped: ${skipReason}`);

/** `test`, or `test.skip` (with the reason printed once) when Chromium cannot run. */
export const browserTest: TestFn = skipReason === undefined ? test : (test.skip as unknown as TestFn);

let context: BrowserContext | undefined;
let profileDir: string | undefined;

/** Flags that keep Chromium off every network but loopback (see shared/TOOLCHAIN.md). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
];

/** Debian's Chromium, headless, with a fresh profile folder. */
export function launchChromium(profileDir: string, options: { ignoreHTTPSErrors?: boolean } = {}): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, ...options });
}

/** Launches the file's Chromium before its tests and closes it after them. */
export function useChromium(): void {
  test.before(async () => {
    if (skipReason !== undefined) return;
    profileDir = await mkdtemp(join(tmpdir(), 'sse-chromium-'));
    context = await launchChromium(profileDir);
  });
  test.after.always(async () => {
    await context?.close();
    if (profileDir !== undefined) await rm(profileDir, { recursive: true, force: true });
  });
}

/**
 * Runs in every page before its scripts: visibility emulation (`__setVisibility`), counts of
 * live timers and of window/document listeners, and a record of beacons.
 */
const PAGE_INIT = `(() => {
  // tsx compiles the tests with esbuild's keepNames: functions passed to page.evaluate may call __name.
  window.__name = window.__name || ((fn) => fn);
  const live = new Set();
  const st = window.setTimeout, ct = window.clearTimeout, si = window.setInterval, ci = window.clearInterval;
  window.setTimeout = function (fn, ms, ...args) {
    const id = st.call(window, function (...a) { live.delete(id); if (typeof fn === 'function') return fn.apply(this, a); }, ms, ...args);
    live.add(id);
    return id;
  };
  window.clearTimeout = function (id) { live.delete(id); return ct.call(window, id); };
  window.setInterval = function (fn, ms, ...args) { const id = si.call(window, fn, ms, ...args); live.add(id); return id; };
  window.clearInterval = function (id) { live.delete(id); return ci.call(window, id); };
  window.__liveTimers = () => live.size;

  const listeners = new Set();
  for (const target of [window, document]) {
    const add = target.addEventListener, remove = target.removeEventListener;
    const keys = new Map();
    const key = (type, fn) => { let m = keys.get(fn); if (!m) keys.set(fn, (m = new Map())); let k = m.get(type); if (!k) m.set(type, (k = {})); return k; };
    target.addEventListener = function (type, fn, options) { if (fn) listeners.add(key(type, fn)); return add.call(this, type, fn, options); };
    target.removeEventListener = function (type, fn, options) { if (fn) listeners.delete(key(type, fn)); return remove.call(this, type, fn, options); };
  }
  window.__liveListeners = () => listeners.size;

  let visibility = 'visible';
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => visibility });
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => visibility === 'hidden' });
  window.__setVisibility = (state) => { visibility = state; document.dispatchEvent(new Event('visibilitychange')); };

  window.__beacons = [];
  const beacon = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => { window.__beacons.push({ url: String(url), body: String(data) }); return beacon(url, data); };
  window.__events = [];
})();`;

/** Globals the init script and the tests define in the page. */
declare global {
  interface Window {
    __liveTimers(): number;
    __liveListeners(): number;
    __setVisibility(state: 'visible' | 'hidden'): void;
    __beacons: { url: string; body: string }[];
    /** Events the test listeners recorded. */
    __events: { type: string; data: string; lastEventId: string }[];
    /** The client under test. */
    sse: import('../../browser/index.js').Sse;
    /** The client module as loaded from the server. */
    SseModule: typeof import('../../browser/index.js');
    /** What the classic script defines. */
    Sse?: typeof import('../../browser/index.js').Sse & { sseEventListener: typeof import('../../browser/index.js').sseEventListener };
  }
}

/** A fresh page at `origin/` (a blank same-origin page), closed when the test ends. */
export async function openPage(t: ExecutionContext, origin: string): Promise<Page> {
  if (context === undefined) throw new Error('useChromium() was not called, or Chromium failed to start');
  const page = await context.newPage();
  t.teardown(() => page.close());
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  t.teardown(() => {
    if (errors.length > 0) t.log('page errors:', errors);
  });
  await page.addInitScript(PAGE_INIT);
  await page.goto(`${origin}/`);
  // Playwright sets up its own page-side helper (with window listeners) on first use: do it
  // now, so that the tests' counts of live listeners start from a stable baseline.
  await page.waitForFunction(() => true);
  return page;
}

/** Everything a test needs of its server. */
export interface TestServer extends Started {
  /** The system at `/sse/test`. */
  plugin: SsePlugin;
  hub: Hub;
  /** A second system at `/sse/other` (for switchURL). */
  other: SsePlugin;
  /** Messages received by `onMessage`, in arrival order, of both systems. */
  received: { system: string; path: string; body: unknown; connectionId: string }[];
}

/**
 * A Koa app with two systems, `/sse/test` and `/sse/other` (login: `?access-token=<userId>`,
 * see `tokenUser`), and a blank page at `/`. `onMessage` answers `{path, body, connectionId}`
 * and throws a 409 for the path `fail`; `onUpload` answers the files' names, sizes and text.
 * `before` may add middleware in front of the plugins.
 */
export async function startServer(t: ExecutionContext, options: Partial<SsePluginOptions> = {}, before?: (app: Koa) => void): Promise<TestServer> {
  const received: TestServer['received'] = [];
  const common = (system: string): SsePluginOptions => ({
    authenticate: tokenUser,
    onMessage: (path, ctx, connection, body) => {
      if (path === 'fail') ctx.throw(409, 'refused on purpose');
      received.push({ system, path, body, connectionId: connection.id });
      return { path, body, connectionId: connection.id };
    },
    onUpload: (path, _ctx, _connection, fields, files) => ({
      path,
      fields,
      files: files.map((f) => ({ field: f.fieldName, name: f.filename, size: f.size, text: f.data.toString('utf8').slice(0, 64) })),
    }),
    ...options,
  });
  const app = new Koa();
  before?.(app);
  const plugin = ssePlugin('/sse/test', common('test'));
  const other = ssePlugin('/sse/other', common('other'));
  app.use(plugin);
  app.use(other);
  app.use(async (ctx, next) => {
    if (ctx.method !== 'GET' || ctx.path !== '/') return next();
    ctx.type = 'html';
    ctx.body = '<!doctype html><html><head><meta charset="utf-8"><title>sse test</title><link rel="icon" href="data:,"></head><body></body></html>';
  });
  t.teardown(() => Promise.all([plugin.close(), other.close()]).then(() => undefined));
  const started = await listen(t, app);
  return { ...started, plugin, hub: plugin.hub, other, received };
}

/** Resolves with the next `connect` of `hub` that satisfies `predicate`; fails after `ms`. */
export function nextConnect(hub: Hub, predicate: (c: Connection) => boolean = () => true, ms = 10_000): Promise<Connection> {
  return nextHubEvent(hub, 'connect', (c) => predicate(c), ms).then(([c]) => c as Connection);
}

/** Resolves with the next `disconnect` of `hub` that satisfies `predicate`; fails after `ms`. */
export function nextDisconnect(hub: Hub, predicate: (c: Connection) => boolean = () => true, ms = 10_000): Promise<[Connection, string]> {
  return nextHubEvent(hub, 'disconnect', (c) => predicate(c), ms) as Promise<[Connection, string]>;
}

function nextHubEvent(hub: Hub, event: 'connect' | 'disconnect', predicate: (c: Connection) => boolean, ms: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      hub.off(event, on);
      reject(new Error(`no matching ${event} within ${ms} ms`));
    }, ms);
    const on = (...args: unknown[]): void => {
      if (!predicate(args[0] as Connection)) return;
      clearTimeout(timer);
      hub.off(event, on);
      resolve(args);
    };
    hub.on(event, on);
  });
}

/**
 * Loads the client module from the server into the page (`window.SseModule`) and creates
 * `window.sse` for `user` on `/sse/test`, recording `bell` events in `window.__events`.
 * Options are the client's, as JSON (functions cannot cross into the page).
 */
export async function createClient(page: Page, user: string, options: Record<string, unknown> = {}): Promise<void> {
  await page.evaluate(
    async ({ user, options }) => {
      const url = '/sse/test/sse.js';
      const mod = (await import(url)) as typeof import('../../browser/index.js');
      window.SseModule = mod;
      const record = (e: MessageEvent<string>): void => {
        window.__events.push({ type: e.type, data: e.data, lastEventId: e.lastEventId });
      };
      window.sse = new mod.default({
        url: '/sse/test',
        query: { 'access-token': user },
        clientId: `client-${user}`,
        reconnectTime: 50,
        maxReconnectTime: 400,
        hiddenGraceTime: 300,
        eventListeners: { bell: record },
        ...options,
      });
    },
    { user, options },
  );
}

/** Waits in the page until the client is connected; answers its connection id. */
export async function connected(page: Page): Promise<string> {
  await page.waitForFunction(() => window.sse.isActive(), undefined, { timeout: 10_000 });
  return page.evaluate(() => window.sse.connectionId!);
}

/** Polls a Node-side condition (what the page does reaches the server asynchronously); fails after `ms`. */
export async function waitFor(predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
