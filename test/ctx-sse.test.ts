// `ctx.sse` in the app's own handlers from the very first request, however the plugin is
// mounted: inside the app's @koa/router (README's setup), or with app.use after the app's
// routes. Without a plugin, reading it throws a TypeError that says what to do.
// A plugin no request has reached yet is bound only to an app it is mounted in: tests run
// concurrently here, several apps in one process, and none gets another's plugin.
import { Router } from '@koa/router';
import test from 'ava';
import Koa from 'koa';
import { ssePlugin, type SsePlugin } from '../lib/index.js';
import { request } from './helpers/reply.js';
import { listen, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

function plugin(t: { teardown(fn: () => Promise<void>): void }, name: string): SsePlugin {
  const p = ssePlugin(`/sse/${name}`, { authenticate: tokenUser });
  t.teardown(() => p.close({ drainMs: 0 }));
  return p;
}

test('plugin.router inside the app router: an app route pushes before any request reached the plugin', async (t) => {
  const hr = plugin(t, 'hr');
  const router = new Router();
  router.post('/api/bell', async (ctx) => {
    ctx.body = { reached: await ctx.sse.sendByUserId(7, 'bell', { n: 1 }), same: ctx.sse === hr.hub, named: ctx.sseHubs.hr === hr.hub };
  });
  router.use(hr.router.routes());
  const app = new Koa();
  app.use(router.routes()).use(router.allowedMethods());
  const { origin } = await listen(t, app);

  // The first request of the app is the push: no stream yet, so nobody is reached.
  const first = await request(`${origin}/api/bell`, { method: 'POST' });
  t.is(first.status, 200, first.text);
  t.deepEqual(first.body, { reached: 0, same: true, named: true });

  const stream = await RawStream.open(t, `${origin}/sse/hr/connect?access-token=7`);
  const again = await request(`${origin}/api/bell`, { method: 'POST' });
  t.deepEqual(again.body, { reached: 1, same: true, named: true });
  t.deepEqual(JSON.parse((await stream.next('bell')).data), { n: 1 });
});

test('app.use(plugin) after the app routes: a route before it sees ctx.sse on the first request', async (t) => {
  const hr = plugin(t, 'late');
  const app = new Koa();
  app.use(async (ctx, next) => {
    if (ctx.path !== '/api/count') return next();
    ctx.body = { online: await ctx.sse.getConnectionCount(), name: ctx.sse.name };
  });
  app.use(hr);
  const { origin } = await listen(t, app);
  const reply = await request(`${origin}/api/count`);
  t.is(reply.status, 200, reply.text);
  t.deepEqual(reply.body, { online: 0, name: 'late' });
});

test('plugin.attach(app) for a plugin mounted some other way; a bad argument is a TypeError', async (t) => {
  const hr = plugin(t, 'attached');
  const app = new Koa();
  // The app's route runs first; the plugin comes after, hidden in a composed middleware that
  // looking at app.middleware cannot see through.
  app.use((ctx, next) => {
    if (ctx.path !== '/') return next();
    ctx.body = { same: ctx.sse === hr.hub };
  });
  app.use((ctx, next) => hr(ctx, next));
  hr.attach(app);
  const { origin } = await listen(t, app);
  t.deepEqual((await request(`${origin}/`)).body, { same: true });
  t.throws(() => hr.attach({} as Koa), { instanceOf: TypeError, message: /attach\(app\) takes the Koa application/ });
});

test('an app without a plugin: ctx.sse throws a TypeError that says how to mount one', async (t) => {
  const app = new Koa();
  app.use((ctx) => {
    try {
      void ctx.sse;
      ctx.body = { error: null };
    } catch (err) {
      ctx.body = { error: err instanceof TypeError ? err.message : String(err), hubs: Object.keys(ctx.sseHubs) };
    }
  });
  // Another app of this process has a plugin no request has reached: it stays that app's.
  const other = plugin(t, 'elsewhere');
  new Koa().use(other);
  const { origin } = await listen(t, app);
  const reply = await request(`${origin}/`);
  t.regex((reply.body as { error: string }).error, /no SSE plugin serves this app.*app\.use\(ssePlugin/);
  t.deepEqual((reply.body as { hubs: string[] }).hubs, []);
});
