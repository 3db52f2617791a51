/**
 * `shareAcrossTabs`: the tabs of one origin share one stream (the leader tab's, chosen with Web
 * Locks, relayed over BroadcastChannel), over HTTP/1.1 where a browser allows six connections
 * per host. Closing the leader's tab hands the stream to another tab without losing a durable
 * message or showing one twice.
 */
import type { Page, Route } from 'playwright-core';
import { browserTest, connected, createClient, openPage, startServer, useChromium, waitFor } from './harness.js';

useChromium();

/** Opens `n` tabs of `origin`, each with a shared-tabs client for `user`; counts the stream requests they make. */
async function openTabs(
  t: Parameters<typeof openPage>[0],
  origin: string,
  user: string,
  n: number,
): Promise<{ pages: Page[]; streams: () => number }> {
  const pages: Page[] = [];
  let streams = 0;
  for (let i = 0; i < n; i++) {
    const page = await openPage(t, origin);
    page.on('request', (req) => {
      if (new URL(req.url()).pathname === '/sse/test/connect') streams++;
    });
    pages.push(page);
  }
  for (const page of pages) await createClient(page, user, { shareAcrossTabs: true });
  return { pages, streams: () => streams };
}

const bells = (page: Page): Promise<number[]> =>
  page.evaluate(() => window.__events.filter((e) => e.type === 'bell').map((e) => (JSON.parse(e.data) as { n: number }).n));

const leaders = async (pages: Page[]): Promise<Page[]> => {
  const flags = await Promise.all(pages.map((p) => p.evaluate(() => window.sse.isTabLeader)));
  return pages.filter((_, i) => flags[i]);
};

browserTest('ten tabs share one stream: one connection on the server and on the network, all receive, all send', async (t) => {
  const { hub, origin, received } = await startServer(t);
  const { pages, streams } = await openTabs(t, origin, 'tabs1', 10);
  const ids = await Promise.all(pages.map((p) => connected(p)));
  t.is(new Set(ids).size, 1, 'every tab uses the same connection');
  t.is((await leaders(pages)).length, 1);
  t.is(await hub.getConnectionCount(), 1);
  t.is(streams(), 1, 'one stream request on the network');

  await hub.sendByUserId('tabs1', 'bell', { n: 1 });
  await Promise.all(pages.map((p) => p.waitForFunction(() => window.__events.length === 1)));
  for (const page of pages) t.deepEqual(await bells(page), [1]);

  // Every tab sends over the shared connection, each its own message.
  const answers = await Promise.all(pages.map((p, i) => p.evaluate((i) => window.sse.sendJson('hello', { i }), i)));
  t.is(answers.length, 10);
  t.deepEqual(
    received.map((r) => (r.body as { i: number }).i).sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  t.true(received.every((r) => r.connectionId === ids[0]));

  // A listener added in one tab reaches that tab (the connection listens to the union).
  await pages[3]!.evaluate(() =>
    window.sse.listen('only3', (e) => {
      window.__events.push({ type: e.type, data: e.data, lastEventId: e.lastEventId });
    }),
  );
  await hub.sendByUserId('tabs1', 'only3', 'x', { listening: true });
  await pages[3]!.waitForFunction(() => window.__events.some((e) => e.type === 'only3'));
  t.is(await hub.getConnectionCount(), 1);
  t.is(streams(), 1);
});

browserTest('closing the leader tab moves the stream: no durable message lost or shown twice in any tab', async (t) => {
  const { hub, origin, received } = await startServer(t, { qos: { file: ':memory:' } });
  const { pages } = await openTabs(t, origin, 'tabs2', 4);
  await Promise.all(pages.map((p) => connected(p)));
  const [leader] = await leaders(pages);
  t.truthy(leader);
  const rest = pages.filter((p) => p !== leader);

  const acked = new Set<string>();
  hub.on('qos-acked', (e) => {
    if (e.by === 'ack') acked.add(e.messageId);
  });
  const total = 60;
  const sent: string[] = [];
  // The other tabs keep sending through the stream while it moves: every request arrives once.
  const requests = rest.map((page, tab) =>
    page.evaluate(async (tab) => {
      const answers = [];
      for (let i = 0; i < 10; i++) {
        answers.push(await window.sse.sendJson('during', { tab, i }));
        await new Promise((r) => setTimeout(r, 20));
      }
      return answers.length;
    }, tab),
  );
  const sending = (async () => {
    for (let n = 0; n < total; n++) {
      sent.push((await hub.qos.sendByUserId('tabs2', 'bell', { n })).messageId);
      if (n === 20) await leader!.close({ runBeforeUnload: false });
      else await new Promise((r) => setTimeout(r, 5));
    }
  })();
  await sending;
  try {
    for (const page of rest)
      await page.waitForFunction((total) => window.__events.filter((e) => e.type === 'bell').length >= total, total, { timeout: 20_000 });
  } catch (err) {
    for (const page of rest)
      t.log(
        JSON.stringify(await bells(page)),
        await page.evaluate(() => [window.sse.stateName, window.sse.isTabLeader, window.sse.connectionId, String(window.sse.lastError)]),
      );
    t.log(await hub.getConnectionCount());
    throw err;
  }
  const expected = Array.from({ length: total }, (_, n) => n);
  for (const page of rest) t.deepEqual(await bells(page), expected);
  t.is((await leaders(rest)).length, 1, 'another tab leads');
  t.deepEqual(await Promise.all(requests), [10, 10, 10]);
  const during = received.filter((r) => r.path === 'during').map((r) => JSON.stringify(r.body));
  t.is(during.length, 30);
  t.is(new Set(during).size, 30);
  await waitFor(() => acked.size === total, 'every message to be acknowledged').catch((err: unknown) => {
    t.log(
      'not acked:',
      sent.map((id, n) => (acked.has(id) ? -1 : n)).filter((n) => n >= 0),
    );
    throw err;
  });
  t.is(await hub.getConnectionCount(), 1);
});

browserTest("a send in flight on the old leader's connection when the stream moves is sent again on the new one, once", async (t) => {
  // The CI race, with the timing forced: the follower's send leaves on the leader's connection,
  // is held until the leader's tab closed and the stream moved to a new connection, then reaches
  // the server, which no longer knows the old connection (404 ERR_SSE_UNKNOWN_CONNECTION).
  const { hub, origin, received } = await startServer(t);
  const pages = [await openPage(t, origin), await openPage(t, origin), await openPage(t, origin)];
  // A short queue timeout: a call left waiting fails the test within it, not after 30 s.
  for (const page of pages) await createClient(page, 'tabs9', { shareAcrossTabs: true, queueTimeout: 10_000 });
  const [old] = new Set(await Promise.all(pages.map((p) => connected(p))));
  const [leader] = await leaders(pages);
  const follower = pages.find((p) => p !== leader)!;
  let held: Route | undefined;
  await follower.route('**/connect/message/held.do*', async (route) => {
    if (held === undefined) held = route;
    else await route.continue();
  });
  const result = follower.evaluate(() => window.sse.sendJson('held', { n: 1 }).then(() => 'sent', String));
  await waitFor(() => held !== undefined, 'the send to leave the follower');
  await leader!.close({ runBeforeUnload: false });
  await follower.waitForFunction((old) => window.sse.stateName === 'open' && window.sse.connectionId !== old, old, { timeout: 20_000 });
  const now = await follower.evaluate(() => window.sse.connectionId!);
  // The server dropped the old connection: the one left is the new leader's.
  for (let i = 0; i < 200 && (await hub.getConnectionCount()) !== 1; i++) await new Promise((r) => setTimeout(r, 50));
  t.is(await hub.getConnectionCount(), 1);
  await held!.continue();
  t.is(await result, 'sent');
  const arrived = received.filter((r) => r.path === 'held');
  t.is(arrived.length, 1, 'it reached the app once');
  t.is(arrived[0]!.connectionId, now, 'over the new connection');
});

browserTest('without Web Locks each tab keeps a stream of its own', async (t) => {
  const { hub, origin } = await startServer(t);
  const pages = [await openPage(t, origin), await openPage(t, origin)];
  for (const page of pages) {
    await page.evaluate(() => Object.defineProperty(Navigator.prototype, 'locks', { configurable: true, get: () => undefined }));
    await createClient(page, 'tabs3', { shareAcrossTabs: true });
  }
  const ids = await Promise.all(pages.map((p) => connected(p)));
  t.not(ids[0], ids[1]);
  t.is(await hub.getConnectionCount(), 2);
  t.deepEqual(await Promise.all(pages.map((p) => p.evaluate(() => window.sse.isTabLeader))), [false, false]);
});

browserTest('visibility applies to the group: the stream stays while any tab is in use, closes when none is, and comes back', async (t) => {
  const { hub, origin } = await startServer(t);
  const { pages, streams } = await openTabs(t, origin, 'tabs4', 2);
  await Promise.all(pages.map((p) => connected(p)));
  const [leader] = await leaders(pages);
  const follower = pages.find((p) => p !== leader)!;

  // The leader's tab hidden past the grace time: the follower still uses the stream.
  await leader!.evaluate(() => window.__setVisibility('hidden'));
  await leader!.waitForTimeout(600);
  t.is(await hub.getConnectionCount(), 1);
  t.true(await follower.evaluate(() => window.sse.isActive()));
  await hub.sendByUserId('tabs4', 'bell', { n: 1 });
  await follower.waitForFunction(() => window.__events.length === 1);

  // Every tab hidden: the stream closes.
  const gone = new Promise<void>((resolve) => hub.once('disconnect', () => resolve()));
  await follower.evaluate(() => window.__setVisibility('hidden'));
  await gone;
  t.is(await hub.getConnectionCount(), 0);

  // One tab back: the stream opens again (through the leader), and that tab gets events.
  await follower.evaluate(() => window.__setVisibility('visible'));
  await connected(follower);
  t.is(await hub.getConnectionCount(), 1);
  t.is(streams(), 2);
  await hub.sendByUserId('tabs4', 'bell', { n: 2 });
  await follower.waitForFunction(() => window.__events.length === 2);
});

browserTest('listeners are counted per tab: the connection stops listening only when no tab listens', async (t) => {
  const { hub, origin } = await startServer(t);
  const { pages } = await openTabs(t, origin, 'tabs5', 2);
  const [id] = await Promise.all(pages.map((p) => connected(p)));
  const listening = (): boolean => hub.getLocalConnection(id!)?.listeners.has('news') ?? false;
  for (const page of pages) await page.evaluate(() => window.sse.listen('news', () => undefined));
  t.true(listening());
  // unlisten answers what the connection is sent: the other tab's 'news' too; this tab no longer has it.
  t.deepEqual((await pages[0]!.evaluate(() => window.sse.unlisten('news'))).sort(), ['bell', 'news']);
  t.false(await pages[0]!.evaluate(() => window.sse.listenerNames.includes('news')));
  t.true(listening(), 'the other tab still listens');
  t.true(await pages[1]!.evaluate(() => window.sse.listenerNames.includes('news')));
  await pages[1]!.evaluate(() => window.sse.unlisten('news'));
  t.false(listening());
});

browserTest('a leader tab that crashes (no pagehide, no beacon) hands over too: its lock frees and the next tab opens the stream', async (t) => {
  const { hub, origin } = await startServer(t, { qos: { file: ':memory:' } });
  const { pages } = await openTabs(t, origin, 'tabs6', 3);
  await Promise.all(pages.map((p) => connected(p)));
  const [leader] = await leaders(pages);
  const rest = pages.filter((p) => p !== leader);
  await hub.qos.sendByUserId('tabs6', 'bell', { n: 0 });
  for (const page of rest) await page.waitForFunction(() => window.__events.length === 1);

  const cdp = await leader!.context().newCDPSession(leader!);
  const crashed = leader!.waitForEvent('crash');
  cdp.send('Page.crash').catch(() => undefined);
  await crashed;
  for (let n = 1; n <= 10; n++) await hub.qos.sendByUserId('tabs6', 'bell', { n });
  for (const page of rest) await page.waitForFunction(() => window.__events.length >= 11, undefined, { timeout: 20_000 });
  for (const page of rest) t.deepEqual(await bells(page), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  t.is((await leaders(rest)).length, 1);
});

browserTest('tab sharing is its own chunk: fetched only by a page that shares tabs, from {url}/sse-tabs.js', async (t) => {
  const { origin } = await startServer(t);
  const chunks = (page: Page): (() => string[]) => {
    const seen: string[] = [];
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.pathname.endsWith('/sse-tabs.js')) seen.push(url.pathname);
    });
    return () => seen;
  };
  const alone = await openPage(t, origin);
  const aloneChunks = chunks(alone);
  await createClient(alone, 'chunk1');
  await connected(alone);
  t.false(await alone.evaluate(() => window.sse.isTabLeader));
  t.deepEqual(aloneChunks(), [], 'a page that does not share tabs never loads the chunk');

  const shared = await openPage(t, origin);
  const sharedChunks = chunks(shared);
  await createClient(shared, 'chunk2', { shareAcrossTabs: true });
  await connected(shared);
  t.true(await shared.evaluate(() => window.sse.isTabLeader), 'alone in its group: the leader');
  t.deepEqual(sharedChunks(), ['/sse/test/sse-tabs.js']);
});

browserTest('the classic script shares tabs too: it imports the same chunk', async (t) => {
  const { hub, origin } = await startServer(t);
  const pages: Page[] = [];
  for (let i = 0; i < 2; i++) {
    const page = await openPage(t, origin);
    await page.addScriptTag({ url: '/sse/test/sse.js?script-type=classic' });
    await page.evaluate(() => {
      const Sse = (window as unknown as { Sse: typeof import('../../browser/index.js').default }).Sse;
      window.sse = new Sse({ url: '/sse/test', query: { 'access-token': 'classic-tabs' }, shareAcrossTabs: true, reconnectTime: 50 });
    });
    pages.push(page);
  }
  const ids = await Promise.all(pages.map((p) => connected(p)));
  t.is(new Set(ids).size, 1, 'both tabs use one connection');
  t.is(await hub.getConnectionCount(), 1);
});
