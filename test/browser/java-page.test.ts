/**
 * A page written for the Java library's client, exactly as its README and index.html show,
 * loading the client this plugin serves: the loader function, `window.sse`, statics, the
 * numeric state, `send(...).then((r) => r.json())`, `connect-close` with `whoTriggerClose`,
 * idle detection, online time, a graceful restart and stream lifetimes.
 *
 * These tests need only what the client does: it declares `reconnectOnClose=1`, so a server
 * may send it `connect-close {reconnect: true}` or just end the stream; both bring it back.
 */
import Koa from 'koa';
import type { Page } from 'playwright-core';
import { ssePlugin } from '../../lib/index.js';
import { tokenUser } from '../helpers/server.js';
import { browserTest, nextConnect, nextDisconnect, openPage, startServer, useChromium, waitFor } from './harness.js';

useChromium();

/** The Java README's loader (its index.html), word for word. */
const JAVA_LOADER = `
    function sseEventListener(url, eventListeners, query) {
        return import(url + '?' + new URLSearchParams(query))
            .then(module => new module.default({url, eventListeners, query}))
    }
`;

/** What the tests keep in the page besides the harness's globals. */
interface JavaPage {
  sseEventListener(url: string, eventListeners: unknown, query?: Record<string, string>): Promise<Window['sse']>;
  /** Everything the page's handlers saw, in order. */
  seen: { type: string; data: unknown; who?: string; reason?: string; argWho?: string; argReason?: string; url?: string; state?: number }[];
}

/**
 * Opens a page with the Java loader and connects `user` as the README does, with
 * listeners that record `bell`, `connect-close` (both arguments) and `sse-change-active`.
 * `extra` are more constructor options (only for the idle tests: the loader passes none).
 */
async function javaPage(t: Parameters<typeof openPage>[0], origin: string, user: string, extra?: Record<string, unknown>): Promise<Page> {
  const page = await openPage(t, origin);
  await page.addScriptTag({ content: JAVA_LOADER });
  await page.evaluate(
    async ({ user, extra }) => {
      const w = window as unknown as JavaPage;
      w.seen = [];
      const eventListeners = {
        bell: (e: MessageEvent<string>) => w.seen.push({ type: e.type, data: e.data }),
        'connect-close': (
          e: MessageEvent<string> & { whoTriggerClose?: string; closeReason?: string },
          info?: { whoTriggerClose: string; closeReason: string },
        ) =>
          w.seen.push({
            type: e.type,
            data: e.data,
            who: e.whoTriggerClose,
            reason: e.closeReason,
            argWho: info?.whoTriggerClose,
            argReason: info?.closeReason,
          }),
        'sse-change-active': (e: MessageEvent) => w.seen.push({ type: e.type, data: e.data as unknown }),
      };
      window.addEventListener('sse-change-active', (e) =>
        w.seen.push({ type: 'window:sse-change-active', data: (e as MessageEvent).data as unknown }),
      );
      if (extra === undefined) {
        await w.sseEventListener('/sse/test', eventListeners, { 'access-token': user });
      } else {
        // The same import, with options the loader cannot pass (small idle timeouts).
        const module = (await import(
          `/sse/test?${new URLSearchParams({ 'access-token': user }).toString()}`
        )) as typeof import('../../browser/index.js');
        new module.default({ url: '/sse/test', eventListeners, query: { 'access-token': user }, ...extra });
      }
    },
    { user, extra },
  );
  return page;
}

/** Waits until the page's client has state OPEN (what a Java page polls: `sse.state === Sse.STATE_OPEN`). */
async function open(page: Page): Promise<string> {
  await page.waitForFunction(() => window.sse.state === window.Sse!.STATE_OPEN, undefined, { timeout: 15_000 });
  return page.evaluate(() => window.sse.connectionId!);
}

browserTest('a Java page: loader, window.sse, statics, numeric state, send/upload/addListener/removeListener resolve to Responses', async (t) => {
  const { hub, origin, received } = await startServer(t);
  const connecting = nextConnect(hub, (c) => c.userId === 'j1');
  const page = await javaPage(t, origin, 'j1');
  const conn = await connecting;
  const id = await open(page);
  t.is(id, conn.id);

  const statics = await page.evaluate(() => {
    const Sse = window.Sse!;
    const sse = window.sse;
    return {
      globalIsDefault: sse instanceof Sse,
      version: Sse.version,
      states: [Sse.STATE_CONNECTING, Sse.STATE_OPEN, Sse.STATE_CLOSED],
      triggers: [Sse.SERVER_TRIGGER_CLOSE, Sse.CLIENT_TRIGGER_CLOSE],
      reconnect: Sse.DEFAULT_RECONNECT_TIME,
      importedBefore: Sse.IMPORT_MODULE_TIMESTAMP <= sse.createTimestamp,
      importTime: Sse.IMPORT_MODULE_TIMESTAMP,
      defaults: {
        ...Sse.DEFAULT_OPTIONS,
        windowGlobal: Sse.DEFAULT_OPTIONS.windowGlobal === window,
        documentGlobal: Sse.DEFAULT_OPTIONS.documentGlobal === document,
      },
      state: sse.state,
      toString: String(sse),
      name: sse.connectionName,
      serverVersion: sse.serverVersion,
      connectResponse: sse.connectResponse,
      listeners: Object.keys(sse.getEventListeners()).sort(),
      instanceId: sse.instanceId,
      clientId: sse.clientId,
      storedClientId: localStorage.getItem('sseClientId'),
      reconnectDuration: sse.reconnectDuration,
      isPageActive: sse.isPageActive,
      destroyed: sse.destroyed,
      retryQueue: sse.retryQueue,
    };
  });
  t.true(statics.globalIsDefault);
  t.regex(statics.version, /^\d+\.\d+\.\d+/);
  t.deepEqual(statics.states, [0, 1, 2]);
  t.deepEqual(statics.triggers, ['server', 'client']);
  t.is(statics.reconnect, 5000);
  t.true(statics.importedBefore);
  t.like(statics.defaults, {
    url: '/api/sse',
    keepaliveTime: 900000,
    withCredentials: true,
    clientId: null,
    accessTimestamp: null,
    reconnectTime: null,
    useWindowEventBus: true,
    leaveTimeout: 5000,
    leaveCheckInterval: 500,
    windowGlobal: true,
    documentGlobal: true,
  });
  t.is(statics.state, 1);
  t.is(statics.toString, `${statics.name}:1:${(await page.evaluate(() => window.sse.createTimestamp)).toString()}`);
  t.is(statics.connectResponse?.connectionId, id);
  t.is(statics.serverVersion, statics.connectResponse?.version);
  t.deepEqual(statics.listeners, ['bell', 'connect-close', 'sse-change-active']);
  t.is(statics.storedClientId, statics.clientId);
  t.is(statics.reconnectDuration, 5000);
  t.true(statics.isPageActive);
  t.false(statics.destroyed);
  t.deepEqual(statics.retryQueue, []);

  // What the connect told the server: the Java client's fields, and that it understands connect-close.reconnect.
  t.deepEqual([...conn.listeners], ['bell']);
  t.is(conn.client.keepaliveTime, 900000);
  t.is(conn.client.clientId, statics.clientId);
  t.like(Object.fromEntries(conn.attributes), {
    useWindowEventBus: 'true',
    clientInstanceId: statics.instanceId,
    clientImportModuleTime: String(statics.importTime),
  });
  t.true(conn.client.reconnectOnClose);

  // send(...).then((r) => r.json()), as Java pages write it; an error status is a Response too.
  const sent = await page.evaluate(async () => {
    const r = await window.sse.send('echo', { text: 'grüße' });
    const failed = await window.sse.send('fail', {});
    return {
      isResponse: r instanceof Response,
      status: r.status,
      json: (await r.json()) as unknown,
      failed: { isResponse: failed instanceof Response, status: failed.status, ok: failed.ok },
    };
  });
  t.true(sent.isResponse);
  t.is(sent.status, 200);
  t.like(sent.json, { success: true, data: { path: 'echo', body: { text: 'grüße' }, connectionId: id } });
  t.deepEqual(sent.failed, { isResponse: true, status: 409, ok: false });
  t.deepEqual(
    received.map((m) => m.path),
    ['echo'],
  );

  const uploaded = await page.evaluate(async () => {
    const form = new FormData();
    form.append('file', new Blob(['hello file'], { type: 'text/plain' }), 'a.txt');
    const r = await window.sse.upload('files', form);
    return { isResponse: r instanceof Response, json: (await r.json()) as { data: { files: { name: string; size: number }[] } } };
  });
  t.true(uploaded.isResponse);
  t.like(uploaded.json.data.files[0], { name: 'a.txt', size: 10 });

  // The index.html example adds listeners through the global `sse`.
  const changed = await page.evaluate(async () => {
    const added = await window.sse.addListener({ test: () => undefined });
    const addedJson = (await added.json()) as { data: { listener: string[] } };
    const removed = await window.sse.removeListener(['test']);
    const removedJson = (await removed.json()) as { data: { listener: string[] } };
    return {
      added: added instanceof Response,
      addedList: addedJson.data.listener,
      removed: removed instanceof Response,
      removedList: removedJson.data.listener,
    };
  });
  t.true(changed.added);
  t.true(changed.removed);
  t.deepEqual(changed.addedList.sort(), ['bell', 'test']);
  t.deepEqual(changed.removedList, ['bell']);
  t.deepEqual([...conn.listeners], ['bell']);

  // Events: a MessageEvent with a string `data` to the listener, and one with `url` on the window bus.
  await page.evaluate(() => {
    window.addEventListener('bell', (e) => {
      const ev = e as MessageEvent<string> & { url: string };
      (window as unknown as JavaPage).seen.push({ type: `window:${ev.type}`, data: ev.data, url: ev.url, who: String(ev instanceof MessageEvent) });
    });
  });
  await hub.sendByUserId('j1', 'bell', { n: 1 });
  await page.waitForFunction(() => (window as unknown as JavaPage).seen.length >= 2);
  t.deepEqual(await page.evaluate(() => (window as unknown as JavaPage).seen), [
    { type: 'bell', data: '{"n":1}' },
    { type: 'window:bell', data: '{"n":1}', url: '/sse/test', who: 'true' },
  ]);
});

browserTest('a Java page: a send made before connect-finish waits and resolves to the Response of its eventual send', async (t) => {
  const { hub, origin, received } = await startServer(t);
  const page = await openPage(t, origin);
  await page.addScriptTag({ content: JAVA_LOADER });
  const connecting = nextConnect(hub, (c) => c.userId === 'j2');
  const answer = await page.evaluate(async () => {
    const sse = await (window as unknown as JavaPage).sseEventListener('/sse/test', ['bell'], { 'access-token': 'j2' });
    const state = sse.state;
    const queued = sse.send('early', { n: 1 });
    const waiting = sse.retryQueue;
    const r = await queued;
    return { state, waiting, status: r.status, json: (await r.json()) as { data: { connectionId: string } } };
  });
  const conn = await connecting;
  t.is(answer.state, 0);
  t.deepEqual(answer.waiting, [{ type: 'send', path: 'early' }]);
  t.is(answer.status, 200);
  t.is(answer.json.data.connectionId, conn.id);
  t.deepEqual(
    received.map((m) => [m.path, m.connectionId]),
    [['early', conn.id]],
  );
});

browserTest('a Java page: connect-close handlers get (event, closeInfo) with whoTriggerClose, after an admin kick and after close()', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await javaPage(t, origin, 'j3');
  const first = await open(page);

  // A kick without reconnect still sends connect-close: the page stays away.
  t.is(await hub.disconnectByUserId('j3', { reconnect: false }), 1);
  await page.waitForFunction(() => (window as unknown as JavaPage).seen.some((e) => e.type === 'connect-close'));
  await page.waitForFunction(() => window.sse.state === 2);
  const kicked = (await page.evaluate(() => (window as unknown as JavaPage).seen)).filter((e) => e.type === 'connect-close');
  t.is(kicked.length, 1);
  t.like(kicked[0], { who: 'server', reason: 'kick', argWho: 'server', argReason: 'kick' });
  t.like(JSON.parse(String(kicked[0]!.data)), { connectionId: first, reason: 'kick', reconnect: false });
  t.like(await page.evaluate(() => window.sse.closeResponse), { connectionId: first, reason: 'kick', reconnect: false });
  t.false(await page.evaluate(() => window.sse.destroyed));

  // connect() brings it back; close() is the client's: handlers hear so, and the beacon says why.
  const again = nextConnect(hub, (c) => c.userId === 'j3');
  await page.evaluate(() => window.sse.connect());
  const second = await again;
  t.is(await open(page), second.id);
  const gone = nextDisconnect(hub, (c) => c.id === second.id);
  await page.evaluate(() => window.sse.close('logout'));
  await gone;
  const closes = (await page.evaluate(() => (window as unknown as JavaPage).seen)).filter((e) => e.type === 'connect-close');
  t.like(closes[1], { who: 'client', reason: 'logout', argWho: 'client', argReason: 'logout' });
  t.like(JSON.parse(String(closes[1]!.data)), { connectionId: second.id, reason: 'logout' });
  t.like(await page.evaluate(() => ({ state: window.sse.state, destroyed: window.sse.destroyed })), { state: 2, destroyed: true });
  const beacon = Object.fromEntries(new URLSearchParams((await page.evaluate(() => window.__beacons)).at(-1)!.body));
  t.like(beacon, { connectionId: second.id, reason: 'logout', sseVersion: await page.evaluate(() => window.Sse!.version) });
  t.is(await hub.getConnectionCount(), 0);
});

browserTest('a Java page: idle detection raises sse-change-active and pauses the online-time counter; close() makes it inactive', async (t) => {
  const { origin } = await startServer(t);
  const page = await javaPage(t, origin, 'j4', { leaveTimeout: 300, leaveCheckInterval: 50 });
  await open(page);

  // No mouse over the page: inactive after leaveTimeout.
  await page.waitForFunction(() => (window as unknown as JavaPage).seen.some((e) => e.type === 'sse-change-active'));
  const idle = await page.evaluate(() => ({
    seen: (window as unknown as JavaPage).seen,
    active: window.sse.isPageActive,
    duration: window.sse.getDuration(),
  }));
  t.false(idle.active);
  t.is(idle.duration.duration, 0, 'the counter is paused');
  const change = idle.seen.find((e) => e.type === 'sse-change-active')!.data as {
    oldActive: boolean;
    newActive: boolean;
    duration: { sessionDuration: number; duration: number };
  };
  t.like(change, { oldActive: true, newActive: false });
  t.is(typeof change.duration.sessionDuration, 'number');
  t.is(typeof change.duration.duration, 'number');
  t.like(idle.seen.find((e) => e.type === 'window:sse-change-active')!.data, { oldActive: true, newActive: false });

  // A click makes it active again; a close right then makes it inactive (and says so).
  const changes = await page.evaluate(
    () =>
      new Promise<unknown[]>((resolve) => {
        const list: unknown[] = [];
        window.addEventListener('sse-change-active', (e) => {
          const data = (e as MessageEvent<{ newActive: boolean }>).data;
          list.push(data);
          if (data.newActive) window.sse.close();
          else resolve(list);
        });
        document.body.dispatchEvent(new MouseEvent('click', { bubbles: true }));
      }),
  );
  t.like(changes, [
    { oldActive: false, newActive: true },
    { oldActive: true, newActive: false },
  ]);
  t.false(await page.evaluate(() => window.sse.isPageActive));
  // Closed: no idle timer left.
  t.is(await page.evaluate(() => window.__liveTimers()), 0);
});

browserTest('a Java page: sse-set-duration sets sessionStorage[sseDurationKey]; getDuration counts on; close() clears it', async (t) => {
  const { hub, origin } = await startServer(t, { reconnectTimeMs: 300 });
  const page = await javaPage(t, origin, 'j5');
  await open(page);
  t.is(await hub.setDurationByUserId('j5', 100), 1);
  await page.waitForFunction(() => sessionStorage.getItem('sseDuration/sse/test') === '100');
  t.is((await page.evaluate(() => window.sse.getDuration())).sessionDuration, 100);
  // The running period counts while connected and active (for leaveTimeout, 5 s, after the last mouseover).
  await page.evaluate(() => document.body.dispatchEvent(new MouseEvent('mouseover', { bubbles: true })));
  await page.waitForFunction(() => window.sse.getDuration().duration >= 1, undefined, { timeout: 5000 });

  // A reconnect reports the total.
  const back = nextConnect(hub, (c) => c.userId === 'j5');
  await hub.disconnectByUserId('j5', { reconnect: true });
  t.true((await back).client.sessionDuration! >= 100);
  const id = await open(page);

  const gone = nextDisconnect(hub, (c) => c.id === id);
  await page.evaluate(() => window.sse.close());
  await gone;
  const beacon = Object.fromEntries(new URLSearchParams((await page.evaluate(() => window.__beacons)).at(-1)!.body));
  t.true(Number(beacon.sessionDuration) >= 100);
  t.like(await page.evaluate(() => ({ stored: sessionStorage.getItem('sseDuration/sse/test'), duration: window.sse.getDuration() })), {
    stored: null,
    duration: { sessionDuration: 0, duration: 0 },
  });
});

browserTest('a Java page comes back after a graceful server restart on the same port', async (t) => {
  const srv = await startServer(t, { reconnectTimeMs: 300 });
  const page = await javaPage(t, srv.origin, 'j6');
  const first = await open(page);
  const port = Number(new URL(srv.origin).port);

  // Graceful: the hub tells its clients, then the server goes away.
  await srv.plugin.close();
  await new Promise<void>((resolve) => {
    srv.server.close(() => resolve());
    srv.server.closeAllConnections();
  });
  await page.waitForFunction(() => window.sse.state !== 1);

  const app = new Koa();
  const plugin = ssePlugin('/sse/test', { authenticate: tokenUser, reconnectTimeMs: 300, onMessage: (path) => ({ path }) });
  app.use(plugin);
  const arrived = nextConnect(plugin.hub, (c) => c.userId === 'j6');
  const restarted = app.listen(port, '127.0.0.1');
  t.teardown(async () => {
    await plugin.close();
    restarted.closeAllConnections();
    await new Promise<void>((resolve) => restarted.close(() => resolve()));
  });
  const conn = await arrived;
  t.not(conn.id, first);
  t.is(await open(page), conn.id);
  t.is(await page.evaluate(() => window.sse.send('after', {}).then((r) => r.status)), 200);
  // It was the server's doing; the page did not give up.
  t.like(
    (await page.evaluate(() => (window as unknown as JavaPage).seen)).find((e) => e.type === 'connect-close'),
    { who: 'server', reason: 'shutdown' },
  );
  t.false(await page.evaluate(() => window.sse.destroyed));
});

browserTest('a Java page stays connected through three stream lifetimes in a row', async (t) => {
  const { hub, origin } = await startServer(t, { maxLifetimeMs: 2000, minLifetimeMs: 2000, lifetimeJitter: 0, reconnectTimeMs: 300 });
  const connects: string[] = [];
  const reasons: string[] = [];
  hub.on('connect', (c) => {
    if (c.userId === 'j7') connects.push(c.id);
  });
  hub.on('disconnect', (c, reason) => {
    if (c.userId === 'j7') reasons.push(reason);
  });
  const page = await javaPage(t, origin, 'j7');
  await open(page);
  // Between two streams the page is reconnecting (0), never closed (2).
  await page.evaluate(() =>
    window.addEventListener('connect-close', () =>
      setTimeout(() => (window as unknown as JavaPage).seen.push({ type: 'state-after-close', data: null, state: window.sse.state })),
    ),
  );
  await waitFor(() => connects.length >= 4, 'three lifetimes and the fourth stream', 20_000);
  const id = await open(page);
  t.is(id, connects[3]);
  t.deepEqual(reasons.slice(0, 3), ['expired', 'expired', 'expired']);
  const seen = await page.evaluate(() => (window as unknown as JavaPage).seen);
  t.deepEqual(
    seen.filter((e) => e.type === 'state-after-close').map((e) => e.state),
    [0, 0, 0],
  );
  t.true(seen.filter((e) => e.type === 'connect-close').every((e) => e.who === 'server'));
  t.is(await page.evaluate(() => window.sse.send('still-here', {}).then((r) => r.status)), 200);
});

browserTest('a stream that simply ends (no connect-close) is reconnected: after its retry: if it sent one, else with backoff', async (t) => {
  const queries: URLSearchParams[] = [];
  const { origin } = await startServer(t, {}, (app) => {
    // A server that ends every stream after connect-finish without a connect-close (what a
    // server does for clients that do not declare reconnectOnClose), the first time with a
    // `retry:` line. The first connect-finish says reconnectTime 60 s: only the retry: hint
    // can bring the second stream quickly. Later ones say 100 ms: the backoff brings them.
    app.use(async (ctx, next) => {
      // The loader imports the module from the system's url: the real one serves it.
      if (ctx.path === '/sse/ends') return ctx.redirect('/sse/test/sse.js');
      if (ctx.path !== '/sse/ends/connect') return next();
      queries.push(new URLSearchParams(ctx.querystring));
      const n = queries.length;
      ctx.respond = false;
      ctx.res.writeHead(200, { 'content-type': 'text/event-stream' });
      const reconnectTime = n === 1 ? 60_000 : 100;
      ctx.res.write(`retry: 60000\nevent: connect-finish\ndata: {"connectionId":"end-${n}","reconnectTime":${reconnectTime}}\n\n`);
      ctx.res.end(n === 1 ? 'retry: 50\n\n' : '');
    });
  });
  const page = await openPage(t, origin);
  await page.addScriptTag({ content: JAVA_LOADER });
  await page.evaluate(() => (window as unknown as JavaPage).sseEventListener('/sse/ends', ['bell'], { 'access-token': 'j8' }));
  await waitFor(() => queries.length >= 3, 'two reconnects', 10_000);
  t.is(queries[0]!.get('reconnectOnClose'), '1');
  t.is(queries[2]!.get('clientId'), queries[0]!.get('clientId'));
  t.is(await page.evaluate(() => (window.sse.lastError as { code?: string }).code), 'ERR_SSE_STREAM_ENDED');
  t.false(await page.evaluate(() => window.sse.destroyed));
  await page.evaluate(() => window.sse.close());
});

browserTest('a Java page with the classic script: window.Sse, numeric state, send(...).then((r) => r.json())', async (t) => {
  const { origin } = await startServer(t);
  const page = await openPage(t, origin);
  await page.addScriptTag({ url: '/sse/test?script-type=classic' });
  const created = await page.evaluate(() => {
    const Sse = window.Sse!;
    const sse = new Sse({ url: '/sse/test', eventListeners: ['bell'], query: { 'access-token': 'j9' } });
    return { same: window.sse === sse, state: sse.state, statics: [Sse.STATE_CONNECTING, Sse.STATE_OPEN, Sse.STATE_CLOSED] };
  });
  t.deepEqual(created, { same: true, state: 0, statics: [0, 1, 2] });
  await open(page);
  const json = await page.evaluate(() => window.sse.send('echo', { classic: true }).then((r) => r.json() as Promise<{ data: { body: unknown } }>));
  t.deepEqual(json.data.body, { classic: true });
});

browserTest('windowGlobal, documentGlobal and jsonGlobal are where the client reaches the page', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  const connecting = nextConnect(hub, (c) => c.userId === 'j10');
  await page.evaluate(async () => {
    const url = '/sse/test/sse.js';
    const module = (await import(url)) as typeof import('../../browser/index.js');
    // A micro-frontend's sandbox: its own event target for the window bus and globals.
    const target = new EventTarget();
    const fakeWindow = Object.assign(target, { localStorage, sessionStorage }) as unknown as Window;
    const parsed: string[] = [];
    const json = { parse: (text: string) => (parsed.push(text), JSON.parse(text) as unknown), stringify: JSON.stringify };
    const w = window as unknown as { sandbox: { target: EventTarget; parsed: string[]; bells: string[] } };
    w.sandbox = { target, parsed, bells: [] };
    target.addEventListener('bell', (e) => w.sandbox.bells.push(`${(e as MessageEvent<string>).data}|${(e as MessageEvent & { url: string }).url}`));
    window.addEventListener('bell', () => w.sandbox.bells.push('real window'));
    new module.default({
      url: '/sse/test',
      eventListeners: ['bell'],
      query: { 'access-token': 'j10' },
      windowGlobal: fakeWindow,
      documentGlobal: document,
      jsonGlobal: json,
    });
  });
  const conn = await connecting;
  await page.waitForFunction(() => (window as unknown as { sandbox: { target: { sse?: { state: number } } } }).sandbox.target.sse?.state === 1);
  await hub.sendByUserId('j10', 'bell', 'to the sandbox');
  await page.waitForFunction(() => (window as unknown as { sandbox: { bells: string[] } }).sandbox.bells.length > 0);
  const result = await page.evaluate((id) => {
    const s = (window as unknown as { sandbox: { parsed: string[]; bells: string[] } }).sandbox;
    return { bells: s.bells, parsedFinish: s.parsed.some((p) => p.includes(id)), globalSse: 'sse' in window };
  }, conn.id);
  t.deepEqual(result, { bells: ['to the sandbox|/sse/test'], parsedFinish: true, globalSse: false });
});
