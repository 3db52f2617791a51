import type { Page } from 'playwright-core';
import { sleep } from '../helpers/server.js';
import { browserTest, connected, createClient, nextConnect, nextDisconnect, openPage, startServer, useChromium, waitFor } from './harness.js';

useChromium();

const CONNECT_PATH = '/sse/test/connect';

/** What each tracked call ended with, in the order they settled. */
type Settled = { name: string; ok: boolean; value?: unknown; code?: string }[];

/** Makes the calls named in `calls` in the page (in that order) and records how each settles. */
async function track(page: Page, calls: [name: string, kind: 'send' | 'upload' | 'addListener', n: number][]): Promise<void> {
  await page.evaluate((calls) => {
    const w = window as unknown as { __settled: Settled };
    w.__settled ??= [];
    for (const [name, kind, n] of calls) {
      let p: Promise<unknown>;
      if (kind === 'send') p = window.sse.sendJson('seq', { n });
      else if (kind === 'addListener') p = window.sse.listen(`late${n}`, () => undefined);
      else {
        const form = new FormData();
        form.append('file', new Blob(['x'.repeat(n)]), `f${n}.txt`);
        p = window.sse.uploadJson('files', form);
      }
      p.then(
        (value) => w.__settled.push({ name, ok: true, value }),
        (e: { code?: string }) => w.__settled.push({ name, ok: false, code: e.code ?? JSON.stringify(e) }),
      );
    }
  }, calls);
}

async function settled(page: Page, n: number): Promise<Settled> {
  await page.waitForFunction((n) => ((window as unknown as { __settled?: Settled }).__settled?.length ?? 0) >= n, n, { timeout: 15_000 });
  return page.evaluate(() => (window as unknown as { __settled: Settled }).__settled);
}

browserTest('offline (connect blocked): sends, uploads and listener changes queue, then arrive once and in order', async (t) => {
  const { hub, origin, received } = await startServer(t);
  const page = await openPage(t, origin);
  await createClient(page, 'r1');
  const first = await connected(page);

  const isConnect = (url: URL): boolean => url.pathname === CONNECT_PATH;
  await page.route(isConnect, (route) => route.abort('connectionrefused'));
  const dropped = nextDisconnect(hub, (c) => c.id === first);
  await hub.disconnectByUserId('r1', { reconnect: true });
  await dropped;
  await page.waitForFunction(() => !window.sse.isActive());

  await track(page, [
    ['s1', 'send', 1],
    ['l1', 'addListener', 1],
    ['s2', 'send', 2],
    ['u1', 'upload', 5],
    ['s3', 'send', 3],
  ]);
  t.is(await page.evaluate(() => window.sse.pending), 5);
  t.deepEqual(received, []);
  // Reconnect attempts keep failing while the route is blocked.
  await page.waitForFunction(() => (window.sse.lastError as { code?: string } | undefined)?.code === 'ERR_SSE_NETWORK');

  const back = nextConnect(hub, (c) => c.userId === 'r1');
  await page.unroute(isConnect);
  const conn = await back;
  const results = await settled(page, 5);
  t.deepEqual(
    results.map((r) => `${r.name}:${r.ok}`),
    ['s1:true', 'l1:true', 's2:true', 'u1:true', 's3:true'],
  );
  t.deepEqual(
    received.map((m) => [m.path, m.body, m.connectionId]),
    [
      ['seq', { n: 1 }, conn.id],
      ['seq', { n: 2 }, conn.id],
      ['seq', { n: 3 }, conn.id],
    ],
  );
  t.deepEqual(results[2]!.value, {
    success: true,
    code: 200,
    data: { path: 'seq', body: { n: 2 }, connectionId: conn.id },
    message: null,
    errorMessage: null,
  });
  t.true(conn.listeners.has('late1'));
  t.is(conn.uploads, 1);
  t.is(await page.evaluate(() => window.sse.pending), 0);
});

browserTest('server stopped and restarted on the same port: queued sends arrive once, in order', async (t) => {
  const srv = await startServer(t);
  const page = await openPage(t, srv.origin);
  await createClient(page, 'r2');
  await connected(page);
  const port = Number(new URL(srv.origin).port);

  // A crash: every socket dropped, no connect-close.
  await new Promise<void>((resolve) => {
    srv.server.close(() => resolve());
    srv.server.closeAllConnections();
  });
  await page.waitForFunction(() => !window.sse.isActive());
  await track(page, [
    ['s1', 'send', 1],
    ['s2', 'send', 2],
    ['s3', 'send', 3],
  ]);
  await page.waitForFunction(() => (window.sse.lastError as { code?: string } | undefined)?.code === 'ERR_SSE_NETWORK');

  const back = nextConnect(srv.hub, (c) => c.userId === 'r2');
  const restarted = srv.app.listen(port, '127.0.0.1');
  t.teardown(() => {
    restarted.closeAllConnections();
    restarted.close();
  });
  const conn = await back;
  const results = await settled(page, 3);
  t.deepEqual(
    results.map((r) => `${r.name}:${r.ok}`),
    ['s1:true', 's2:true', 's3:true'],
  );
  t.deepEqual(
    srv.received.map((m) => [m.body, m.connectionId]),
    [
      [{ n: 1 }, conn.id],
      [{ n: 2 }, conn.id],
      [{ n: 3 }, conn.id],
    ],
  );
});

browserTest('a request that fails on the network is retried and arrives once', async (t) => {
  const { origin, received } = await startServer(t);
  const page = await openPage(t, origin);
  await createClient(page, 'r3');
  await connected(page);
  let attempts = 0;
  await page.route(
    (url) => url.pathname === '/sse/test/connect/message/once.do',
    (route) => (attempts++ === 0 ? route.abort('connectionreset') : route.continue()),
  );
  const answer = (await page.evaluate(() => window.sse.sendJson('once', { x: 1 }))) as { data: { body: unknown } };
  t.deepEqual(answer.data.body, { x: 1 });
  t.is(attempts, 2);
  t.deepEqual(
    received.map((m) => m.path),
    ['once'],
  );
});

browserTest('the queue is bounded and timed: overflow and timeout reject, every promise settles', async (t) => {
  const { origin, received } = await startServer(t);
  const page = await openPage(t, origin);
  // Never connected: every call waits in the queue.
  await createClient(page, 'r4', { autoConnect: false, maxQueueSize: 2, queueTimeout: 300 });
  await track(page, [
    ['s1', 'send', 1],
    ['s2', 'send', 2],
    ['s3', 'send', 3],
  ]);
  const results = await settled(page, 3);
  t.deepEqual(results, [
    { name: 's3', ok: false, code: 'ERR_SSE_QUEUE_FULL' },
    { name: 's1', ok: false, code: 'ERR_SSE_QUEUE_TIMEOUT' },
    { name: 's2', ok: false, code: 'ERR_SSE_QUEUE_TIMEOUT' },
  ]);
  t.is(await page.evaluate(() => window.sse.pending), 0);
  t.is(await page.evaluate(() => window.__liveTimers()), 0);
  t.deepEqual(received, []);
});

browserTest('a hidden tab closes its stream after the grace period (with a beacon) and reconnects when shown', async (t) => {
  const { hub, origin, received } = await startServer(t);
  const page = await openPage(t, origin);
  await createClient(page, 'r5');
  const first = await connected(page);

  const gone = nextDisconnect(hub, (c) => c.id === first);
  await page.evaluate(() => window.__setVisibility('hidden'));
  await gone;
  await page.waitForFunction(() => window.sse.stateName === 'closed');
  await page.waitForFunction(() => window.__beacons.length === 1);
  t.like(Object.fromEntries(new URLSearchParams((await page.evaluate(() => window.__beacons))[0]!.body)), {
    connectionId: first,
    reason: 'hidden',
  });
  t.is(await hub.getConnectionCount(), 0);

  // A send from the hidden tab connects just for it, then the stream closes again.
  const briefly = nextConnect(hub, (c) => c.userId === 'r5');
  const answer = (await page.evaluate(() => window.sse.sendJson('from-hidden', { ok: 1 }))) as { success: boolean };
  t.true(answer.success);
  const brief = await briefly;
  await page.waitForFunction(() => window.sse.stateName === 'closed');
  await waitFor(() => hub.getLocalConnection(brief.id) === undefined, 'the brief connection to close');
  t.deepEqual(
    received.map((m) => m.path),
    ['from-hidden'],
  );

  const back = nextConnect(hub, (c) => c.userId === 'r5');
  await page.evaluate(() => window.__setVisibility('visible'));
  const conn = await back;
  t.is(await connected(page), conn.id);
});

browserTest('a quick hide/show does not flap the stream', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  await createClient(page, 'r6');
  const first = await connected(page);
  const changes: string[] = [];
  hub.on('connect', (c) => changes.push(`connect ${c.id}`));
  hub.on('disconnect', (c) => changes.push(`disconnect ${c.id}`));

  const timers = await page.evaluate(() => window.__liveTimers());
  const during = await page.evaluate(async () => {
    window.__setVisibility('hidden');
    const whileHidden = window.__liveTimers();
    await new Promise((r) => requestAnimationFrame(r));
    window.__setVisibility('visible');
    return whileHidden;
  });
  t.is(during, timers + 1, 'a grace timer ran while hidden');
  t.is(await page.evaluate(() => window.__liveTimers()), timers, 'showing the tab cancelled it');
  // Past the grace period (300 ms) nothing happened.
  await sleep(500);
  t.deepEqual(changes, []);
  t.is(await page.evaluate(() => window.sse.connectionId), first);
  t.true(await page.evaluate(() => window.sse.isActive()));
  t.deepEqual(await page.evaluate(() => window.__beacons), []);
});

browserTest('a kick with reconnect:true reconnects; with reconnect:false the client stays closed until connect()', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  await createClient(page, 'r7');
  const first = await connected(page);

  const back = nextConnect(hub, (c) => c.userId === 'r7');
  t.is(await hub.disconnectByUserId('r7', { reconnect: true }), 1);
  const second = await back;
  t.not(second.id, first);
  await page.waitForFunction((id) => window.sse.connectionId === id, second.id);

  t.is(await hub.disconnectByUserId('r7', { reconnect: false }), 1);
  await page.waitForFunction(() => window.sse.stateName === 'closed');
  t.like(await page.evaluate(() => window.sse.closeInfo), { connectionId: second.id, reason: 'kick', reconnect: false });
  t.is(await page.evaluate(() => (window.sse.lastError as { code?: string }).code), 'ERR_SSE_CLOSED_BY_SERVER');
  // Nothing is scheduled: no reconnect will come by itself.
  t.is(await page.evaluate(() => window.__liveTimers()), 0);
  t.is(await hub.getConnectionCount(), 0);

  const again = nextConnect(hub, (c) => c.userId === 'r7');
  await page.evaluate(() => window.sse.connect());
  t.is(await connected(page), (await again).id);
});

browserTest('switchURL moves the client to the other system', async (t) => {
  const srv = await startServer(t);
  const page = await openPage(t, srv.origin);
  await createClient(page, 'r8');
  const first = await connected(page);

  const left = nextDisconnect(srv.hub, (c) => c.id === first);
  const arrived = nextConnect(srv.other.hub, (c) => c.userId === 'r8');
  await page.evaluate(() => window.sse.switchURL('/sse/other'));
  await left;
  const conn = await arrived;
  t.is(await connected(page), conn.id);
  t.is(await page.evaluate(() => window.sse.url), '/sse/other');
  t.deepEqual([...conn.listeners], ['bell']);

  await srv.other.hub.sendByUserId('r8', 'bell', 'from other');
  await page.waitForFunction(() => window.__events.length === 1);
  t.is((await page.evaluate(() => window.__events))[0]!.data, 'from other');
  await page.evaluate(() => window.sse.send('where', {}));
  t.deepEqual(
    srv.received.map((m) => [m.system, m.connectionId]),
    [['other', conn.id]],
  );
  t.is(await srv.hub.getConnectionCount(), 0);
});

browserTest('destroy() closes the stream, rejects pending calls and leaves no timer or listener', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  const before = await page.evaluate(() => ({ timers: window.__liveTimers(), listeners: window.__liveListeners() }));
  t.is(before.timers, 0);
  await createClient(page, 'r9', { hiddenGraceTime: 60_000 });
  const id = await connected(page);
  // One request stuck in flight (never answered) and one hidden-tab grace timer running.
  await page.route(
    (url) => url.pathname === '/sse/test/connect/message/stuck.do',
    () => undefined,
  );
  await page.evaluate(async () => {
    const w = window as unknown as { outcomes: Promise<unknown>[] };
    const outcome = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => 'resolved',
        (e: { code?: string }) => e.code,
      );
    w.outcomes = [outcome(window.sse.send('stuck', {}))];
    window.__setVisibility('hidden');
  });
  await page.waitForFunction(() => window.sse.pending === 1);
  t.true((await page.evaluate(() => window.__liveTimers())) >= 3, 'watchdog, request timeout, grace timer');
  t.true((await page.evaluate(() => window.__liveListeners())) > 0);

  const gone = nextDisconnect(hub, (c) => c.id === id);
  const outcome = await page.evaluate(async () => {
    const w = window as unknown as { outcomes: Promise<unknown>[] };
    window.sse.destroy();
    const late = window.sse.send('late', {}).then(
      () => 'resolved',
      (e: { code?: string }) => e.code,
    );
    return {
      pending: await Promise.all(w.outcomes),
      late: await late,
      ready: await window.sse.ready().then(
        () => 'resolved',
        (e: { code?: string }) => e.code,
      ),
    };
  });
  await gone;
  t.deepEqual(outcome, { pending: ['ERR_SSE_DESTROYED'], late: 'ERR_SSE_DESTROYED', ready: 'ERR_SSE_DESTROYED' });
  t.deepEqual(await page.evaluate(() => ({ timers: window.__liveTimers(), listeners: window.__liveListeners() })), before);
  t.is(await page.evaluate(() => window.sse.stateName), 'destroyed');
  t.is(Object.fromEntries(new URLSearchParams((await page.evaluate(() => window.__beacons))[0]!.body)).reason, 'destroy');

  // A client that never connected: its queued calls reject too.
  const queued = await page.evaluate(async () => {
    const sse = new window.SseModule.default({ url: '/sse/test', autoConnect: false, query: { 'access-token': 'r9' } });
    const p = sse.send('x', {}).then(
      () => 'resolved',
      (e: { code?: string }) => e.code,
    );
    sse.destroy();
    return p;
  });
  t.is(queued, 'ERR_SSE_DESTROYED');
  t.deepEqual(await page.evaluate(() => ({ timers: window.__liveTimers(), listeners: window.__liveListeners() })), before);
});

browserTest('a client created in a hidden tab connects only once the tab is shown', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  await page.evaluate(() => window.__setVisibility('hidden'));
  await createClient(page, 'r10');
  t.is(await page.evaluate(() => window.sse.stateName), 'closed');
  t.is(await hub.getConnectionCount(), 0);
  const arrived = nextConnect(hub, (c) => c.userId === 'r10');
  await page.evaluate(() => window.__setVisibility('visible'));
  t.is(await connected(page), (await arrived).id);
});

browserTest('a stream that falls silent (no heartbeat) is taken for dead and replaced', async (t) => {
  let attempts = 0;
  const { origin } = await startServer(t, {}, (app) => {
    // A "server" that answers connect-finish, then never writes again (a dead peer behind a proxy).
    app.use(async (ctx, next) => {
      if (ctx.path !== '/sse/silent/connect') return next();
      attempts++;
      ctx.respond = false;
      ctx.res.writeHead(200, { 'content-type': 'text/event-stream' });
      ctx.res.write(`event: connect-finish\ndata: {"connectionId":"silent-${attempts}","heartbeatMs":200}\n\n`);
    });
  });
  const page = await openPage(t, origin);
  await createClient(page, 'r11', { url: '/sse/silent' });
  t.is(await connected(page), 'silent-1');
  await page.waitForFunction(() => window.sse.connectionId === 'silent-2', undefined, { timeout: 10_000 });
  t.is(await page.evaluate(() => (window.sse.lastError as { code?: string }).code), 'ERR_SSE_STALE');
  t.true(attempts >= 2);
});
