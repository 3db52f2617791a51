import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExampleApp } from '../../example/app.js';
import { listen } from '../helpers/server.js';
import { browserTest, nextConnect, nextDisconnect, openPage, useChromium } from './harness.js';

useChromium();

browserTest('the example page: connect with the served client, send, upload, receive, switch system', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sse-example-page-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const { app, plugins } = createExampleApp({ dataDir });
  t.teardown(async () => {
    await plugins.hr.close();
    await plugins.hunter.close();
  });
  const { origin } = await listen(t, app);
  const page = await openPage(t, origin);
  const log = page.locator('#log');

  // A newcomer is told what to do first; the hint goes once something is logged.
  t.regex((await page.textContent('#log-hint'))!, /click Connect/);
  await page.fill('#token', '7@1');
  const connecting = nextConnect(plugins.hr.hub, (c) => c.userId === '7');
  await page.click('#connect');
  const conn = await connecting;
  await page.waitForFunction(() => document.getElementById('state')!.textContent === 'open');
  await page.waitForFunction((id) => document.getElementById('conn-id')!.textContent === id, conn.id);

  // send('echo', …): answered with the body and pushed back as an `echo` event.
  await page.fill('#echo-body', '{"hello": "from the page"}');
  await page.click('#echo-form button');
  await page.waitForFunction(() => document.getElementById('send-answer')!.textContent!.includes('"data"'));
  t.like(JSON.parse((await page.textContent('#send-answer'))!), { success: true, data: { hello: 'from the page' } });
  await log.locator('li', { hasText: 'echo' }).first().waitFor();
  t.regex((await log.locator('li', { hasText: 'echo' }).first().textContent())!, /"hello":"from the page"/);

  // upload('files', form): answered with names and sizes.
  await page.setInputFiles('#files', [
    { name: 'a.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') },
    { name: 'b.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(2048) },
  ]);
  await page.click('#upload-form button');
  await page.waitForFunction(() => document.getElementById('send-answer')!.textContent!.includes('"files"'));
  t.deepEqual(JSON.parse((await page.textContent('#send-answer'))!).data.files, [
    { name: 'a.txt', size: 5 },
    { name: 'b.bin', size: 2048 },
  ]);

  // A push from the server (the page's admin form) shows up in the log.
  await page.fill('#a-value', '7');
  await page.fill('#a-data', '{"count": 3}');
  await page.click('#admin-form button');
  await log.locator('li', { hasText: 'bell' }).first().waitFor();
  t.regex((await log.locator('li', { hasText: 'bell' }).first().textContent())!, /"count":3/);
  t.false(await page.isVisible('#log-hint'));
  // Each row has a column for the event's id (empty for events sent without one).
  t.is(await log.locator('li').first().locator('span.id').count(), 1);

  // Switching the system moves the connection to /sse/hunter.
  const left = nextDisconnect(plugins.hr.hub, (c) => c.id === conn.id);
  const arrived = nextConnect(plugins.hunter.hub, (c) => c.userId === '7');
  await page.selectOption('#system', 'hunter');
  await left;
  const hunter = await arrived;
  await page.waitForFunction((id) => document.getElementById('conn-id')!.textContent === id, hunter.id);
  t.is(await plugins.hunter.hub.sendByTenantId(1, 'notice', 'to hunter tenant 1'), 1);
  await log.locator('li', { hasText: 'to hunter tenant 1' }).waitFor();

  const gone = nextDisconnect(plugins.hunter.hub, (c) => c.id === hunter.id);
  await page.click('#disconnect');
  await gone;
  t.regex((await page.textContent('#state'))!, /^closed/);
});
