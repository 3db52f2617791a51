import test from 'ava';
import Koa from 'koa';
import { MemoryBus, ssePlugin, VERSION } from '../lib/index.js';
import { listen, startPlugin, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

test('every answer of the endpoints carries X-Sse-Version and the server id, streams included', async (t) => {
  const { base, origin } = await startPlugin(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=1`);
  const answers = [
    stream.headers!,
    (await fetch(`${base}/sse.js`)).headers,
    (await fetch(`${base}/connect`)).headers, // 401
    (await fetch(`${base}/nothing-here`)).headers, // 404
    (await fetch(`${base}/connect/ack.do`)).headers, // 405
    (
      await fetch(`${base}/connect/message/echo.do?access-token=1&connectionId=${stream.connectionId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      })
    ).headers,
  ];
  const ids = new Set<string | null>();
  for (const headers of answers) {
    t.is(headers.get('x-sse-version'), VERSION);
    ids.add(headers.get('x-sse-server-id'));
  }
  t.is(ids.size, 1, 'one id for the process');
  t.regex([...ids][0]!, /^[0-9a-f]{12}$/);
  t.is((await fetch(`${origin}/elsewhere`)).headers.get('x-sse-version'), null, 'not on the app’s own answers');
});

test('serverIdHeader renames the header, false leaves it out; a clustered node sends its node id', async (t) => {
  const named = await startPlugin(t, { serverIdHeader: 'Sse-Server-Id' });
  const res = await fetch(`${named.base}/sse.js`);
  t.truthy(res.headers.get('sse-server-id'));
  t.is(res.headers.get('x-sse-server-id'), null);

  const off = await startPlugin(t, { serverIdHeader: false });
  const offRes = await fetch(`${off.base}/sse.js`);
  t.is(offRes.headers.get('x-sse-server-id'), null);
  t.is(offRes.headers.get('x-sse-version'), VERSION);

  const bus = new MemoryBus();
  const node = await startPlugin(t, { cluster: { transport: bus.transport('node-a') } });
  const s = await RawStream.open(t, `${node.base}/connect?access-token=1`);
  t.is(s.headers!.get('x-sse-server-id'), 'node-a');
});

test('a stream head keeps the headers an app set before it; connect answered by a hook carries the server headers', async (t) => {
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.set('Access-Control-Allow-Origin', 'https://pages.example');
    await next();
  });
  const plugin = ssePlugin('/sse/test', {
    authenticate: tokenUser,
    serverIdHeader: 'Sse-Node',
    verifyConnect: (ctx, user) => {
      if (user.id !== 'refused') return true;
      ctx.status = 409;
      ctx.body = { refused: true };
      return false;
    },
  });
  app.use(plugin);
  t.teardown(() => plugin.close());
  const { origin } = await listen(t, app);
  const stream = await RawStream.open(t, `${origin}/sse/test/connect?access-token=1`);
  const head = stream.headers!;
  t.is(head.get('access-control-allow-origin'), 'https://pages.example');
  t.is(head.get('content-type'), 'text/event-stream; charset=utf-8');
  t.is(head.get('x-sse-version'), VERSION);
  t.regex(head.get('sse-node') ?? '', /^[0-9a-f]{12}$/);
  t.is(head.get('x-sse-server-id'), null);

  const refused = await fetch(`${origin}/sse/test/connect?access-token=refused`);
  t.is(refused.status, 409);
  t.deepEqual(await refused.json(), { refused: true });
  t.is(refused.headers.get('x-sse-version'), VERSION);
  t.is(refused.headers.get('sse-node'), head.get('sse-node'));
  t.is(refused.headers.get('access-control-allow-origin'), 'https://pages.example');
});

test('a bad serverIdHeader is a TypeError at creation', (t) => {
  for (const bad of ['', 'with space', 'x\r\ny', true, 7]) {
    t.throws(() => ssePlugin('/sse/x', { authenticate: tokenUser, serverIdHeader: bad as never }), {
      instanceOf: TypeError,
      message: /serverIdHeader/,
    });
  }
});
