// The admin dashboard ({base}/dashboard) in Chromium: who may open it, a connection appearing
// and disappearing, the Kick button, and a screenshot with demo content for the README.
import type { ExecutionContext } from 'ava';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { createExampleApp } from '../../example/app.js';
import { listen } from '../helpers/server.js';
import { RawStream } from '../helpers/stream.js';
import { browserTest, nextDisconnect, openPage, startServer, useChromium, waitFor } from './harness.js';

useChromium();

const RESULTS = new URL('../../test-results/', import.meta.url);
/** Set to rewrite docs/dashboard.png (the README's screenshot) from the demo test. */
const UPDATE_DOCS = process.env.UPDATE_SCREENSHOTS === '1';

const isAdmin = (_ctx: unknown, user: { id?: unknown }): boolean => user.id === 'admin';

/**
 * Opens the dashboard as `token` and waits for its first complete poll. `problems` collects
 * page errors and console errors (a CSP violation is one) from the start.
 */
async function openDashboard(
  t: ExecutionContext,
  origin: string,
  base: string,
  token: string,
  interval = 250,
): Promise<{ page: Page; problems: string[] }> {
  const page = await openPage(t, origin);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`${msg.text()} ${msg.location().url}`);
  });
  await page.setViewportSize({ width: 1280, height: 900 });
  const response = await page.goto(`${origin}${base}/dashboard?access-token=${encodeURIComponent(token)}&interval=${interval}`);
  t.is(response?.status(), 200);
  await page.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('Updated'), undefined, { timeout: 10_000 });
  return { page, problems };
}

/** The connections table's row of connection `id`. */
const row = (page: Page, id: string) => page.locator(`#connections tr[data-key="${id}"]`);

async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(RESULTS, { recursive: true });
  const path = new URL(name, RESULTS).pathname;
  await page.screenshot({ path, fullPage: true });
  return path;
}

browserTest('the dashboard is for admins: 401 without login, 403 for a user', async (t) => {
  const { origin } = await startServer(t, { authorizeAdmin: isAdmin });
  const page = await openPage(t, origin);
  for (const [query, status, code] of [
    ['', 401, 'ERR_SSE_UNAUTHORIZED'],
    ['?access-token=7', 403, 'ERR_SSE_FORBIDDEN'],
  ] as const) {
    const response = await page.goto(`${origin}/sse/test/dashboard${query}`);
    t.is(response?.status(), status);
    t.like(await response?.json(), { success: false, code });
  }
});

browserTest('the dashboard shows a connection appear and disappear, and its Kick button closes it', async (t) => {
  const { origin, hub, errors } = await startServer(t, { authorizeAdmin: isAdmin });
  const { page, problems } = await openDashboard(t, origin, '/sse/test', 'admin');

  t.is(await page.textContent('#system'), 'test');
  t.is(await page.textContent('#c-connections'), '0');
  t.is(await page.textContent('#c-peers'), 'single node');
  // No durable queue on this system: its panel says so instead of failing.
  t.is(await page.textContent('#c-pending'), 'not configured');
  await page.locator('#messages', { hasText: 'not configured' }).waitFor();
  await page.locator('#connections tr.empty').waitFor();

  // A connection appears (with its user) ...
  const first = await RawStream.open(t, `${origin}/sse/test/connect?access-token=7&clientId=dash-a&listeners=bell`);
  await row(page, first.connectionId).waitFor();
  t.regex((await row(page, first.connectionId).textContent())!, /User 7 \(7\).*dash-a.*bell/s);
  await page.locator('#users tr[data-key$="/7"]', { hasText: 'User 7' }).waitFor();
  await page.waitForFunction(() => document.getElementById('c-connections')!.textContent === '1');

  // ... events sent show up in the totals ...
  t.is(await hub.sendAll('bell', { n: 1 }), 1);
  t.is(await hub.sendAll('bell', { n: 2 }), 1);
  await page.waitForFunction(() => document.getElementById('c-sent')!.textContent === '2');

  // ... and disappears when the client leaves.
  const left = nextDisconnect(hub, (c) => c.id === first.connectionId);
  await first.close();
  await left;
  await row(page, first.connectionId).waitFor({ state: 'detached' });
  await page.locator('#connections tr.empty').waitFor();

  // Kick: the hub closes the connection with reason `kick`, and its client is told so.
  const second = await RawStream.open(t, `${origin}/sse/test/connect?access-token=8&clientId=dash-b`);
  await row(page, second.connectionId).waitFor();
  const kicked = nextDisconnect(hub, (c) => c.id === second.connectionId);
  await row(page, second.connectionId).getByRole('button', { name: 'Kick' }).click();
  const [connection, reason] = await kicked;
  t.is(connection.id, second.connectionId);
  t.is(reason, 'kick');
  t.like(JSON.parse((await second.next('connect-close')).data), { connectionId: second.connectionId, reason: 'kick', reconnect: false });
  await second.waitEnd();
  t.is(hub.getLocalConnection(second.connectionId), undefined);
  await row(page, second.connectionId).waitFor({ state: 'detached' });
  t.regex((await page.textContent('#notice'))!, new RegExp(`Kicked connection ${second.connectionId}`));

  // Search: only matching connections are listed.
  const third = await RawStream.open(t, `${origin}/sse/test/connect?access-token=9&clientId=dash-c`);
  const fourth = await RawStream.open(t, `${origin}/sse/test/connect?access-token=10&clientId=dash-d`);
  await row(page, fourth.connectionId).waitFor();
  await page.locator('#connections select').selectOption('clientId');
  await page.locator('#connections input[type=search]').fill('dash-c');
  await row(page, fourth.connectionId).waitFor({ state: 'detached' });
  t.is(await page.locator('#connections tbody tr').count(), 1);
  await row(page, third.connectionId).waitFor();

  t.log('screenshot:', await screenshot(page, 'dashboard.png'));
  t.deepEqual(problems, [], 'no page error, no CSP violation');
  t.deepEqual(errors, []);
});

browserTest('the dashboard with demo content (the README screenshot)', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sse-dashboard-demo-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const { app, plugins } = createExampleApp({ dataDir, env: {} });
  t.teardown(async () => {
    await plugins.hr.close();
    await plugins.hunter.close();
  });
  const { origin } = await listen(t, app);
  const hub = plugins.hr.hub;

  const browsers = [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
    'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  ];
  const people = [
    ['alice@acme', '/inbox', 'bell,notice'],
    ['bob@acme', '/orders', 'bell,order-update'],
    ['carol@globex', '/', 'bell'],
    ['dave@globex', '/reports', 'bell,report-ready'],
    ['erin@initech', '/inbox', 'bell,notice'],
    ['alice@acme', '/calendar', 'bell,notice'],
  ] as const;
  const open = async (i: number): Promise<RawStream> => {
    const [token, path, listeners] = people[i % people.length]!;
    const query = new URLSearchParams({
      'access-token': token,
      clientId: `tab-${(i * 7919).toString(36)}`,
      clientVersion: '0.1.0',
      listeners,
      locationHref: `https://app.example.com${path}`,
    });
    return RawStream.open(t, `${origin}/sse/hr/connect?${query}`, { headers: { 'user-agent': browsers[i % browsers.length]! } });
  };
  const streams = [await open(0), await open(1), await open(2)];

  // Durable messages for users who are offline stay pending until they come back and ack.
  await hub.qos.sendByUserId('frank', 'invoice-ready', { invoice: 'INV-2041', amount: 129.9 });
  await hub.qos.sendByUserId('grace', 'password-expiring', { days: 3 });
  await hub.qos.sendByUserId(['frank', 'heidi'], 'maintenance', { at: '2025-06-01T22:00:00Z', minutes: 30 });

  // Poll fast and drive some traffic between polls, so the chart has a shape.
  const { page, problems } = await openDashboard(t, origin, '/sse/hr', 'admin');
  let polls = 0;
  page.on('response', (res) => {
    if (res.url().includes('/connect/stats.json')) polls++;
  });
  const SAMPLES = 28;
  for (let sample = 0; sample < SAMPLES; sample++) {
    const seen = polls;
    const burst = Math.round(40 + 35 * Math.sin(sample / 3) + (sample % 5) * 6);
    for (let i = 0; i < burst; i++) await hub.sendAll(i % 4 === 0 ? 'notice' : 'bell', { n: i, at: Date.now() });
    if (sample === 6 || sample === 12 || sample === 17) streams.push(await open(streams.length));
    if (sample === 22) {
      const stream = streams.shift()!;
      const left = nextDisconnect(hub, (c) => c.id === stream.connectionId);
      await stream.close();
      await left;
    }
    await waitFor(() => polls > seen, 'the next poll of stats.json');
  }
  const local = [...hub.connections()].length;
  await page.waitForFunction((n) => document.getElementById('c-connections')!.textContent === String(n), local);
  await page.waitForFunction(() => document.querySelectorAll('#messages tbody tr[data-key]').length === 3);
  await page.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('Updated'));
  t.is(await page.textContent('#c-pending'), '3');
  t.is(await page.locator('#connections tbody tr[data-key]').count(), local);
  // bob, carol, dave, erin and alice (her first tab closed, her second open).
  t.is(await page.locator('#users tbody tr[data-key]').count(), 5);

  t.deepEqual(problems, []);
  t.log('screenshot:', await screenshot(page, 'dashboard-demo.png'));
  if (UPDATE_DOCS) {
    const docs = new URL('../../docs/dashboard.png', import.meta.url);
    await mkdir(new URL('./', docs), { recursive: true });
    await page.screenshot({ path: docs.pathname, fullPage: true });
    const { size } = await stat(docs);
    t.true(size < 400 * 1024, `docs/dashboard.png is ${size} bytes`);
    t.log(`docs/dashboard.png: ${size} bytes`);
  }
});
