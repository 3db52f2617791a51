// Routing on @koa/router over real HTTP: app paths that span segments, HEAD only where an
// endpoint lists it, a plugin at the root next to the app's own routes, plugin.router
// mounted in an app's own @koa/router, and routes an app adds to plugin.router.
import { Router } from '@koa/router';
import test from 'ava';
import Koa from 'koa';
import { ssePlugin } from '../lib/index.js';
import { assertError, request } from './helpers/reply.js';
import { listen, startPlugin, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const postJson = (url: string, body: unknown) =>
  request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('message and upload: the app path may span segments (a/b/c.do)', async (t) => {
  const { base } = await startPlugin(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const q = `?connectionId=${stream.connectionId}&access-token=7`;
  for (const path of ['x', 'a/b/c', 'deep/er/than/that/file.name', 'v1.2/a-b_c']) {
    const reply = await postJson(`${base}/connect/message/${path}.do${q}`, { n: 1 });
    t.is(reply.status, 200, reply.text);
    t.is(reply.body.data.path, path);
  }
  const form = new FormData();
  form.append('note', 'hi');
  const upload = await request(`${base}/connect/upload/a/b/c.do${q}`, { method: 'POST', body: form });
  t.is(upload.status, 200, upload.text);
  t.is(upload.body.data.path, 'a/b/c');
  // The router hands the path over percent-decoded, and it is checked as such.
  t.is((await postJson(`${base}/connect/message/a%2Fb.do${q}`, {})).body.data.path, 'a/b');
  assertError(t, await postJson(`${base}/connect/message/a%2F%2E%2E%2Fb.do${q}`, {}), 404, 'ERR_SSE_NOT_FOUND');
  assertError(t, await postJson(`${base}/connect/message/a//b.x${q}`, {}), 404, 'ERR_SSE_NOT_FOUND');
});

test('HEAD is answered where GET is only for the script; elsewhere 405 like any other method', async (t) => {
  const { base, plugin, errors } = await startPlugin(t);
  for (const path of ['', '/', '/sse.js']) {
    const reply = await request(`${base}${path}`, { method: 'HEAD' });
    t.is(reply.status, 200, path);
    t.regex(reply.headers.get('content-type') ?? '', /javascript/);
  }
  const cases: [method: string, path: string, allow: string][] = [
    ['HEAD', '/connect', 'GET, POST'],
    ['HEAD', '/connect/users.json', 'GET'],
    ['HEAD', '/dashboard', 'GET'],
    ['OPTIONS', '/connect', 'GET, POST'],
    ['POST', '/sse.js', 'HEAD, GET'],
  ];
  for (const [method, path, allow] of cases) {
    const reply = await request(`${base}${path}?access-token=7`, { method });
    t.is(reply.status, 405, `${method} ${path}`);
    t.is(reply.headers.get('allow'), allow, `${method} ${path}`);
    if (method !== 'HEAD') assertError(t, reply, 405, 'ERR_SSE_METHOD_NOT_ALLOWED');
  }
  t.is(await plugin.hub.getConnectionCount(), 0, 'HEAD opened no stream');
  t.deepEqual(errors, []);
});

test('paths are case-sensitive, and a trailing slash is another path', async (t) => {
  const { base } = await startPlugin(t);
  assertError(t, await request(`${base}/CONNECT?access-token=7`), 404, 'ERR_SSE_NOT_FOUND');
  assertError(t, await request(`${base}/sse.js/`), 404, 'ERR_SSE_NOT_FOUND');
  assertError(t, await request(`${base}/Dashboard`), 404, 'ERR_SSE_NOT_FOUND');
});

test('mounted at the root, the plugin answers its own paths and leaves the rest to the app', async (t) => {
  const app = new Koa();
  const plugin = ssePlugin('/', { authenticate: tokenUser, onMessage: (path) => ({ path }) });
  t.teardown(() => plugin.close());
  app.use(plugin);
  app.use((ctx) => {
    ctx.body = `app:${ctx.method} ${ctx.path}`;
  });
  const { origin, errors } = await listen(t, app);
  for (const path of ['/other', '/connect/x', '/connect/message/x', '/connect/upload/x.txt', '/sse', '/api/notify']) {
    const reply = await request(`${origin}${path}`);
    t.is(reply.text, `app:GET ${path}`);
  }
  t.is((await request(`${origin}/sse.js`)).status, 200);
  const stream = await RawStream.open(t, `${origin}/connect?access-token=7`);
  const q = `?connectionId=${stream.connectionId}&access-token=7`;
  t.is((await postJson(`${origin}/connect/message/a/b.do${q}`, {})).body.data.path, 'a/b');
  const put = await request(`${origin}/connect`, { method: 'PUT' });
  assertError(t, put, 405, 'ERR_SSE_METHOD_NOT_ALLOWED');
  t.is(put.headers.get('allow'), 'GET, POST');
  assertError(t, await request(`${origin}/connect/message/a..b.do${q}`), 404, 'ERR_SSE_NOT_FOUND');
  t.deepEqual(errors, []);
});

test("plugin.router mounted in an app's own @koa/router", async (t) => {
  const plugin = ssePlugin('/sse/hr', { authenticate: tokenUser, onMessage: (path, ctx) => ({ path, user: ctx.state.seen }) });
  t.teardown(() => plugin.close());
  const app = new Koa();
  const router = new Router();
  // App middleware before the endpoints runs for them too, as for any route of the app.
  router.use(async (ctx, next) => {
    ctx.state.seen = 'app middleware';
    await next();
  });
  router.get('/hello', (ctx) => {
    ctx.body = { hello: ctx.sseHubs?.hr === plugin.hub ? 'hub registered' : 'no hub' };
  });
  router.use(plugin.router.routes());
  app.use(router.routes()).use(router.allowedMethods());
  const { origin, errors } = await listen(t, app);
  const base = `${origin}/sse/hr`;

  const script = await request(`${base}/sse.js`);
  t.is(script.status, 200);
  t.regex(script.headers.get('content-type') ?? '', /javascript/);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  t.is(stream.status, 200);
  t.truthy(stream.connectionId);
  t.is(await plugin.hub.getConnectionCount(), 1);
  const q = `?connectionId=${stream.connectionId}&access-token=7`;
  t.deepEqual((await postJson(`${base}/connect/message/a/b/c.do${q}`, {})).body.data, { path: 'a/b/c', user: 'app middleware' });
  // The endpoints' errors stay the library's JSON.
  assertError(t, await request(`${base}/connect`), 401, 'ERR_SSE_UNAUTHORIZED');
  assertError(t, await postJson(`${base}/connect/message/a..b.do${q}`, {}), 404, 'ERR_SSE_NOT_FOUND');
  // Wrong methods are the app router's (allowedMethods), with the endpoints' methods in Allow.
  const put = await request(`${base}/connect`, { method: 'PUT' });
  t.is(put.status, 405);
  t.is(put.headers.get('allow'), 'GET, POST');
  // The first request to the endpoints registered the hub on the app.
  t.deepEqual((await request(`${origin}/hello`)).body, { hello: 'hub registered' });
  t.deepEqual(errors, []);
});

test('routes an app adds to plugin.router are served by the plugin too', async (t) => {
  const { base, plugin } = await startPlugin(t);
  t.is((await request(`${base}/sse.js`)).status, 200);
  assertError(t, await request(`${base}/extra`), 404, 'ERR_SSE_NOT_FOUND');
  plugin.router.get('/extra', (ctx) => {
    ctx.body = 'extra';
  });
  t.is((await request(`${base}/extra`)).text, 'extra');
  t.is((await request(`${base}/sse.js`)).status, 200);
  const put = await request(`${base}/extra`, { method: 'PUT' });
  assertError(t, put, 405, 'ERR_SSE_METHOD_NOT_ALLOWED');
  t.is(put.headers.get('allow'), 'HEAD, GET');
});

test('a base path with characters that path-to-regexp reads as syntax is taken literally', async (t) => {
  const app = new Koa();
  const plugin = ssePlugin('/v1:beta/(sse)*', { authenticate: tokenUser, name: 'odd' });
  t.teardown(() => plugin.close());
  app.use(plugin);
  app.use((ctx) => {
    ctx.body = 'app';
  });
  const { origin } = await listen(t, app);
  t.is((await request(`${origin}/v1:beta/(sse)*/sse.js`)).status, 200);
  assertError(t, await request(`${origin}/v1:beta/(sse)*/nope`), 404, 'ERR_SSE_NOT_FOUND');
  t.is((await request(`${origin}/v1:other/(sse)*/sse.js`)).text, 'app');
});
