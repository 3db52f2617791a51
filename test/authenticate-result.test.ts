// What `authenticate` returns decides who the stream belongs to: a result without a usable
// `id` that is not clearly anonymous (id: null, or a login known by its token) is the app's
// mistake, reported to it, not a stream that silently belongs to nobody.
import test from 'ava';
import Koa from 'koa';
import { ssePlugin, type SseUser } from '../lib/index.js';
import { listen } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

async function connectAs(t: Parameters<typeof listen>[0], user: unknown) {
  const app = new Koa();
  const plugin = ssePlugin('/sse/a', { authenticate: () => user as SseUser });
  app.use(plugin);
  t.teardown(() => plugin.close({ drainMs: 0 }));
  const { origin, errors } = await listen(t, app);
  return { origin, errors, plugin };
}

for (const [what, user, message] of [
  ['{ userId: 7 }', { userId: 7, name: 'Ada' }, /\{ userId: … \} without id: the user id goes in `id`/],
  ['{ user_id: 7 }', { user_id: 7 }, /\{ user_id: … \} without id/],
  ['an object as id', { id: { n: 7 } }, /id is not usable \(an object\)/],
  ['an empty id', { id: '' }, /id is not usable \(a string \(""\)\)/],
  ['neither id nor token', { name: 'Ada', tenantId: 1 }, /without id or accessToken/],
] as const) {
  test(`authenticate returning ${what} is an error the app sees, not an anonymous stream`, async (t) => {
    const { origin, errors, plugin } = await connectAs(t, user);
    const res = await fetch(`${origin}/sse/a/connect`);
    t.is(res.status, 500);
    await res.body?.cancel();
    t.is(await plugin.hub.getConnectionCount(), 0);
    t.regex(String(errors[0]), message);
  });
}

test('clearly anonymous results open anonymous streams; an id opens the user\u2019s', async (t) => {
  for (const [user, userId] of [
    [{ id: null, tenantId: 1 }, undefined],
    [{ accessToken: 'tok' }, undefined],
    [{ id: 7 }, '7'],
    [{ id: 'ada', accessToken: 'tok' }, 'ada'],
  ] as const) {
    const { origin, errors, plugin } = await connectAs(t, user);
    const stream = await RawStream.open(t, `${origin}/sse/a/connect`);
    t.is(plugin.hub.getLocalConnection(stream.connectionId)?.userId, userId, JSON.stringify(user));
    t.deepEqual(errors, []);
  }
});
