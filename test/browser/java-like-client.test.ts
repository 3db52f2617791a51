/**
 * A page that keeps its own copy of the Java library's client, which takes any `connect-close`
 * as final: it marks itself closed, clears its reconnect timer and drops the stream at once.
 * The server must never strand it: a close that wants the client back (lifetime, shutdown,
 * a kick with `reconnect: true`) ends the stream without `connect-close`, so its EventSource
 * comes back by itself; `connect-close` goes only where the page should stay away.
 */
import Koa from 'koa';
import type { Page } from 'playwright-core';
import { ssePlugin } from '../../lib/index.js';
import { tokenUser } from '../helpers/server.js';
import { browserTest, nextConnect, openPage, startServer, useChromium } from './harness.js';

useChromium();

/** The Java client's behaviour on `connect-close`, reduced to what matters here. */
const JAVA_LIKE_CLIENT = `
  window.javaLike = { connects: [], bells: [], closes: [], closed: false };
  window.startJavaLike = function (url) {
    const state = window.javaLike;
    let timer;
    const open = () => {
      const es = new EventSource(url);
      state.es = es;
      es.addEventListener('connect-finish', (e) => state.connects.push(JSON.parse(e.data).connectionId));
      es.addEventListener('bell', (e) => state.bells.push(e.data));
      es.addEventListener('connect-close', (e) => {
        // Final for this client: no reconnect, whatever the frame says.
        state.closes.push(JSON.parse(e.data));
        state.closed = true;
        clearTimeout(timer);
        setTimeout(() => es.close());
      });
      es.onerror = () => {
        if (state.closed || es.readyState !== EventSource.CLOSED) return;
        timer = setTimeout(open, 500);
      };
    };
    open();
  };
`;

async function javaLikePage(t: Parameters<typeof openPage>[0], origin: string, user: string): Promise<Page> {
  const page = await openPage(t, origin);
  await page.addScriptTag({ content: JAVA_LIKE_CLIENT });
  await page.evaluate((u) => (window as unknown as { startJavaLike(url: string): void }).startJavaLike(`/sse/test/connect?access-token=${u}`), user);
  return page;
}

interface JavaLikeState {
  connects: string[];
  bells: string[];
  closes: { reason: string; reconnect: boolean }[];
  closed: boolean;
}

const state = (page: Page): Promise<JavaLikeState> =>
  page.evaluate(() => {
    const s = (window as unknown as { javaLike: JavaLikeState }).javaLike;
    return { connects: [...s.connects], bells: [...s.bells], closes: [...s.closes], closed: s.closed };
  });

browserTest('a Java-like client stays online through three stream lifetimes', async (t) => {
  const { hub, origin } = await startServer(t, { maxLifetimeMs: 2000, minLifetimeMs: 2000, lifetimeJitter: 0, reconnectTimeMs: 300 });
  const page = await javaLikePage(t, origin, 'jl1');
  await page.waitForFunction(() => (window as unknown as { javaLike: JavaLikeState }).javaLike.connects.length >= 4, undefined, { timeout: 20_000 });
  const s = await state(page);
  t.deepEqual(s.closes, [], 'no connect-close for a close that wants the client back');
  t.false(s.closed);
  t.is(await hub.sendByUserId('jl1', 'bell', 'after three lifetimes'), 1);
  await page.waitForFunction(() => (window as unknown as { javaLike: JavaLikeState }).javaLike.bells.includes('after three lifetimes'));
});

browserTest('a Java-like client comes back after a graceful restart; a kick without reconnect keeps it away', async (t) => {
  const srv = await startServer(t, { reconnectTimeMs: 300 });
  const page = await javaLikePage(t, srv.origin, 'jl2');
  await page.waitForFunction(() => (window as unknown as { javaLike: JavaLikeState }).javaLike.connects.length === 1);
  const port = Number(new URL(srv.origin).port);
  await srv.plugin.close();
  await new Promise<void>((resolve) => {
    srv.server.close(() => resolve());
    srv.server.closeAllConnections();
  });

  const app = new Koa();
  const plugin = ssePlugin('/sse/test', { authenticate: tokenUser, reconnectTimeMs: 300 });
  app.use(plugin);
  const arrived = nextConnect(plugin.hub, (c) => c.userId === 'jl2', 20_000);
  const restarted = app.listen(port, '127.0.0.1');
  t.teardown(async () => {
    await plugin.close();
    restarted.closeAllConnections();
    await new Promise<void>((resolve) => restarted.close(() => resolve()));
  });
  await arrived;
  await page.waitForFunction(() => (window as unknown as { javaLike: JavaLikeState }).javaLike.connects.length === 2);
  t.deepEqual((await state(page)).closes, [], 'the shutdown sent no connect-close');
  t.is(await plugin.hub.sendByUserId('jl2', 'bell', 'after restart'), 1);
  await page.waitForFunction(() => (window as unknown as { javaLike: JavaLikeState }).javaLike.bells.includes('after restart'));

  // Control: a kick without reconnect must still reach it as connect-close, and it stays away.
  t.is(await plugin.hub.disconnectByUserId('jl2'), 1);
  await page.waitForFunction(() => (window as unknown as { javaLike: JavaLikeState }).javaLike.closed);
  t.like((await state(page)).closes[0], { reason: 'kick', reconnect: false });
  // A Java client would be back within its reconnect time (300 ms here) if it came back at all.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.false(await plugin.hub.isOnline('jl2'), 'kicked for good');
});
