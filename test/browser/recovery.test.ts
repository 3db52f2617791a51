import type { Page } from 'playwright-core';
import type { Hub } from '../../lib/index.js';
import { sleep } from '../helpers/server.js';
import { browserTest, connected, nextConnect, openPage, startServer, useChromium } from './harness.js';

// The recovery window with the real browser client: ordinary events sent while the page is
// between two streams reach it once, in order, and the page is told when they cannot.

useChromium();

const KINDS = ['user', 'tenant', 'channel', 'runtime', 'all'] as const;

/** A client for user r1 of tenant t1 in the fixed channel `ch`, recording `bell` and `sse-recovery`. */
async function createRecordingClient(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const mod = (await import('/sse/test/sse.js' as string)) as typeof import('../../browser/index.js');
    const w = window as unknown as { __bells: string[]; __recoveries: string[] };
    w.__bells = [];
    w.__recoveries = [];
    window.sse = new mod.default({
      url: '/sse/test',
      query: { 'access-token': 'r1@t1', channel: 'ch' },
      clientId: 'client-r1',
      reconnectTime: 50,
      maxReconnectTime: 400,
      hiddenGraceTime: 100,
      eventListeners: {
        bell: (e: MessageEvent<string>) => w.__bells.push(e.data),
        'sse-recovery': (e: MessageEvent<string>) => w.__recoveries.push(e.data),
      },
    });
  });
}

/** Sends `{k, n}` to each target kind `perSecond` times a second for `ms`; answers how many of each. */
async function steadyStream(hub: Hub, perSecond: number, ms: number, from = 0): Promise<number> {
  const start = Date.now();
  let n = from;
  while (Date.now() - start < ms) {
    const due = from + Math.floor(((Date.now() - start) * perSecond) / 1000);
    for (; n <= due; n++) {
      await Promise.all([
        hub.sendByUserId('r1', 'bell', { k: 'user', n }),
        hub.sendByTenantId('t1', 'bell', { k: 'tenant', n }),
        hub.sendByChannel('ch', 'bell', { k: 'channel', n }),
        hub.sendByChannel('rt', 'bell', { k: 'runtime', n }),
        hub.sendAll('bell', { k: 'all', n }),
      ]);
    }
    await sleep(5);
  }
  return n;
}

browserTest(
  'lifetime rotation under 100 sends/s to a user, a tenant, a channel, a runtime channel and all: every event exactly once, in order',
  async (t) => {
    // Streams live about a second: several rotations while the stream of sends goes on.
    const { hub, origin } = await startServer(t, {
      maxLifetimeMs: 1000,
      minLifetimeMs: 1000,
      keepaliveChoice: 'server',
      lifetimeJitter: 0.3,
      authorizeChannel: () => true,
    });
    const page = await openPage(t, origin);
    await createRecordingClient(page);
    await connected(page);
    await page.evaluate(() => window.sse.join('rt'));
    let connects = 0;
    hub.on('connect', () => connects++);
    const sent = await steadyStream(hub, 100, 5000);
    // The last ones reach the page (a stream may be mid-rotation).
    await page.waitForFunction((n) => (window as unknown as { __bells: string[] }).__bells.length >= n, sent * KINDS.length, { timeout: 15_000 });
    await sleep(200);
    const bells = (await page.evaluate(() => (window as unknown as { __bells: string[] }).__bells)).map(
      (d) => JSON.parse(d) as { k: string; n: number },
    );
    const recoveries = (await page.evaluate(() => (window as unknown as { __recoveries: string[] }).__recoveries)).map(
      (d) => JSON.parse(d) as { recovered: boolean; resumed: boolean },
    );
    const duplicates = bells.length - new Set(bells.map((b) => `${b.k}:${b.n}`)).size;
    const missed = KINDS.map((k) => sent - new Set(bells.filter((b) => b.k === k).map((b) => b.n)).size).reduce((a, b) => a + b, 0);
    t.log(`sent ${sent * KINDS.length}, seen ${bells.length}, duplicates ${duplicates}, missed ${missed}, reconnects ${connects}`);
    t.true(connects >= 3, `the stream rotated (${connects} reconnects)`);
    t.is(duplicates, 0);
    t.is(missed, 0);
    for (const k of KINDS) {
      const ns = bells.filter((b) => b.k === k).map((b) => b.n);
      t.deepEqual(
        ns,
        [...ns].sort((a, b) => a - b),
        `${k} in send order`,
      );
    }
    t.true(recoveries.length > connects - 1 && recoveries.slice(1).every((r) => r.recovered && r.resumed), JSON.stringify(recoveries));
    t.like(recoveries[0], { recovered: false, resumed: false });
    t.true(await page.evaluate(() => window.sse.recovered === true));
  },
);

browserTest('a page away longer than the window: recovered false (sse-recovery and the property), nothing of then replayed', async (t) => {
  const { hub, origin } = await startServer(t, { recovery: { windowMs: 500 } });
  const page = await openPage(t, origin);
  await createRecordingClient(page);
  const first = await connected(page);
  await hub.sendByUserId('r1', 'bell', { k: 'user', n: 0 });
  await page.waitForFunction(() => (window as unknown as { __bells: string[] }).__bells.length === 1);
  await page.evaluate(() => window.__setVisibility('hidden'));
  await page.waitForFunction(() => !window.sse.isActive());
  // Sent while away, then aged past the window.
  await hub.sendByUserId('r1', 'bell', { k: 'user', n: 1 });
  await sleep(700);
  const back = nextConnect(hub, (c) => c.userId === 'r1' && c.id !== first);
  await page.evaluate(() => window.__setVisibility('visible'));
  await back;
  await page.waitForFunction(() => (window as unknown as { __recoveries: string[] }).__recoveries.length === 2);
  t.false(await page.evaluate(() => window.sse.recovered));
  t.like(await page.evaluate(() => window.sse.recovery), { recovered: false, resumed: true });
  await hub.sendByUserId('r1', 'bell', { k: 'user', n: 2 });
  await page.waitForFunction(() => (window as unknown as { __bells: string[] }).__bells.length >= 2);
  t.deepEqual(
    (await page.evaluate(() => (window as unknown as { __bells: string[] }).__bells)).map((d) => (JSON.parse(d) as { n: number }).n),
    [0, 2],
  );
});
