import test from 'ava';
import { readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { browserTest, openPage, startServer, useChromium } from './harness.js';

useChromium();

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

test('GET {base} and {base}/sse.js serve the ES module with a strong ETag; If-None-Match gives 304', async (t) => {
  const { origin } = await startServer(t);
  const a = await fetch(`${origin}/sse/test/sse.js`);
  const b = await fetch(`${origin}/sse/test`);
  for (const res of [a, b]) {
    t.is(res.status, 200);
    t.is(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
    t.is(res.headers.get('cache-control'), 'no-cache');
    t.regex(res.headers.get('etag') ?? '', /^"[\w-]{16,}"$/);
  }
  const code = await a.text();
  t.is(await b.text(), code);
  t.true(code.includes(`browser client ${pkg.version}`));
  t.regex(code, /export\s*\{/);
  const etag = a.headers.get('etag')!;
  t.is(b.headers.get('etag'), etag);

  for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const again = await fetch(`${origin}/sse/test/sse.js`, { headers: { 'if-none-match': inm } });
    t.is(again.status, 304, inm);
    t.is(again.headers.get('etag'), etag);
    t.is(await again.text(), '');
  }
  t.is((await fetch(`${origin}/sse/test/sse.js`, { headers: { 'if-none-match': '"stale"' } })).status, 200);
  const head = await fetch(`${origin}/sse/test/sse.js`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.headers.get('etag'), etag);
  t.is((await fetch(`${origin}/sse/test/sse.js`, { method: 'POST' })).status, 405);
});

test('?script-type=classic serves the classic script with its own ETag', async (t) => {
  const { origin } = await startServer(t);
  const module = await fetch(`${origin}/sse/test/sse.js`);
  const classic = await fetch(`${origin}/sse/test/sse.js?script-type=classic`);
  t.is(classic.status, 200);
  t.is(classic.headers.get('content-type'), 'text/javascript; charset=utf-8');
  const code = await classic.text();
  t.notRegex(code, /\bexport\s*\{/);
  t.not(classic.headers.get('etag'), module.headers.get('etag'));
  const plainBase = await fetch(`${origin}/sse/test?script-type=classic`);
  t.is(await plainBase.text(), code);
});

test('without a built bundle the script answers 503 ERR_SSE_CLIENT_NOT_BUILT, not a 500', async (t) => {
  // A copy of lib/ in .tmp/ (inside the project, so node_modules resolve) has no dist/ beside it.
  const scratch = new URL('../../.tmp/', import.meta.url).pathname;
  await mkdir(scratch, { recursive: true });
  const dir = await mkdtemp(join(scratch, 'script-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(new URL('../../lib/', import.meta.url).pathname, join(dir, 'lib'), { recursive: true });
  const { ssePlugin } = (await import(join(dir, 'lib/index.ts'))) as typeof import('../../lib/index.js');
  const Koa = (await import('koa')).default;
  const { listen, tokenUser } = await import('../helpers/server.js');
  const app = new Koa();
  app.use(ssePlugin('/sse/x', { authenticate: tokenUser }));
  const { origin, errors } = await listen(t, app);
  const res = await fetch(`${origin}/sse/x/sse.js`);
  t.is(res.status, 503);
  const body = (await res.json()) as { code: string; message: string };
  t.is(body.code, 'ERR_SSE_CLIENT_NOT_BUILT');
  t.regex(body.message, /npm run build/);
  t.deepEqual(errors, []);
});

browserTest('the page imports the module from the plugin: default export Sse, named sseEventListener, version', async (t) => {
  const { origin } = await startServer(t);
  const page = await openPage(t, origin);
  const seen = await page.evaluate(async () => {
    const url = '/sse/test/sse.js';
    const mod = (await import(url)) as typeof import('../../browser/index.js');
    return {
      defaultIsClass: typeof mod.default === 'function' && mod.default === mod.Sse,
      listen: typeof mod.sseEventListener,
      version: mod.VERSION,
      staticVersion: mod.default.version,
    };
  });
  t.deepEqual(seen, { defaultIsClass: true, listen: 'function', version: pkg.version, staticVersion: pkg.version });
});

browserTest('a classic <script> defines window.Sse, which connects', async (t) => {
  const { origin, hub } = await startServer(t);
  const page = await openPage(t, origin);
  await page.addScriptTag({ url: '/sse/test/sse.js?script-type=classic' });
  const version = await page.evaluate(async () => {
    const Sse = window.Sse!;
    const sse = await Sse.sseEventListener('/sse/test', {}, { 'access-token': 'classic' });
    window.sse = sse;
    return Sse.version;
  });
  t.is(version, pkg.version);
  t.true(await hub.isOnline('classic'));
});
