// Most Koa apps start with a body parser. Mounted before the plugin, it has already read the
// body when an endpoint runs: the JSON endpoints use its parse (checked for depth like ours),
// uploads still stream when the parser leaves multipart alone, and a parser that read the
// upload too gets a clear error instead of an empty upload.
import { bodyParser } from '@koa/bodyparser';
import test from 'ava';
import Koa from 'koa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { koaBody } from 'koa-body';
import { ssePlugin } from '../lib/index.js';
import { listen, postJson, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const PARSERS: [name: string, make: () => Koa.Middleware][] = [
  ['@koa/bodyparser', () => bodyParser() as Koa.Middleware],
  ['koa-body', () => koaBody() as unknown as Koa.Middleware],
];

async function start(t: Parameters<typeof listen>[0], parser: Koa.Middleware) {
  const app = new Koa();
  app.use(parser);
  const dir = await mkdtemp(join(tmpdir(), 'sse-body-parsers-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const plugin = ssePlugin('/sse/p', {
    authenticate: tokenUser,
    qos: { file: join(dir, 'qos.db') },
    authorizeChannel: () => true,
    onMessage: (_path, _ctx, _connection, body) => ({ body }),
    onUpload: (_path, _ctx, _connection, fields, files) => ({ fields, files: files.map((f) => ({ name: f.filename, size: f.size })) }),
  });
  app.use(plugin);
  t.teardown(() => plugin.close({ drainMs: 0 }));
  const started = await listen(t, app);
  return { ...started, base: `${started.origin}/sse/p`, plugin };
}

for (const [name, make] of PARSERS) {
  test(`${name} before the plugin: message, addListener, join, ack and disconnect work`, async (t) => {
    const { base, plugin, errors } = await start(t, make());
    const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
    const q = `?access-token=7&connectionId=${stream.connectionId}`;
    const message = await postJson(`${base}/connect/message/echo.do${q}`, { hello: 'world', n: [1, 2] });
    t.is(message.status, 200, JSON.stringify(message.body));
    t.deepEqual(message.body.data.body, { hello: 'world', n: [1, 2] });
    // A client's own empty object is not an empty body.
    t.deepEqual((await postJson(`${base}/connect/message/echo.do${q}`, {})).body.data.body, {});
    const listener = await postJson(`${base}/connect/addListener.do?access-token=7`, { connectionId: stream.connectionId, listener: ['bell'] });
    t.is(listener.status, 200, JSON.stringify(listener.body));
    const join = await postJson(`${base}/connect/join.do?access-token=7`, { connectionId: stream.connectionId, channels: ['room:1'] });
    t.is(join.status, 200, JSON.stringify(join.body));
    t.deepEqual(join.body.data.channels, ['room:1']);
    t.is(await plugin.hub.sendByChannel('room:1', 'in-room', 1), 1);
    const { messageId: id } = await plugin.hub.qos.sendByUserId(7, 'durable', { n: 1 });
    await stream.next('durable');
    const ack = await postJson(`${base}/connect/ack.do?access-token=7`, { connectionId: stream.connectionId, ids: [id] });
    t.is(ack.status, 200, JSON.stringify(ack.body));
    // A plain stream acks by the write (ack-policy.ts): the call is valid and acks nothing more.
    t.is(ack.body.data.acked, 0);
    // The page's beacon on unload: a small urlencoded form.
    const bye = await fetch(`${base}/connect/disconnect.do`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `connectionId=${stream.connectionId}`,
    });
    t.is(bye.status, 200, await bye.text());
    await stream.waitEnd();
    t.deepEqual(errors, []);
  });

  test(`${name} before the plugin: a JSON body nested too deep is still 400, uploads still stream`, async (t) => {
    const { base } = await start(t, make());
    const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
    const q = `?access-token=7&connectionId=${stream.connectionId}`;
    const deep = '['.repeat(70) + ']'.repeat(70);
    const reply = await postJson(`${base}/connect/message/echo.do${q}`, `{"a":${deep}}`);
    t.is(reply.status, 400, JSON.stringify(reply.body));
    const form = new FormData();
    form.append('note', 'hi');
    form.append('file', new Blob(['hello']), 'a.txt');
    const upload = await fetch(`${base}/connect/upload/files.do${q}`, { method: 'POST', body: form });
    t.is(upload.status, 200, await upload.clone().text());
    t.deepEqual(((await upload.json()) as { data: { files: unknown } }).data.files, [{ name: 'a.txt', size: 5 }]);
  });
}

test('koa-body with multipart: true read the upload first: a clear error, not an empty upload', async (t) => {
  const { base, errors } = await start(t, koaBody({ multipart: true }) as unknown as Koa.Middleware);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const form = new FormData();
  form.append('file', new Blob(['hello']), 'a.txt');
  const upload = await fetch(`${base}/connect/upload/files.do?access-token=7&connectionId=${stream.connectionId}`, { method: 'POST', body: form });
  t.is(upload.status, 500);
  t.regex(String(errors[0]), /already read by another body parser/);
});

test('a body parser mounted after the plugin never sees its requests; the endpoints parse their own bodies', async (t) => {
  const app = new Koa();
  const plugin = ssePlugin('/sse/p', { authenticate: tokenUser, onMessage: (_path, _ctx, _connection, body) => ({ body }) });
  app.use(plugin);
  let parsed = 0;
  app.use(async (ctx, next) => {
    parsed++;
    await next();
  });
  app.use(bodyParser() as Koa.Middleware);
  app.use((ctx) => {
    ctx.body = { app: (ctx.request as { body?: unknown }).body };
  });
  t.teardown(() => plugin.close({ drainMs: 0 }));
  const { origin } = await listen(t, app);
  const base = `${origin}/sse/p`;
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const message = await postJson(`${base}/connect/message/echo.do?access-token=7&connectionId=${stream.connectionId}`, { hello: 'world' });
  t.is(message.status, 200, JSON.stringify(message.body));
  t.deepEqual(message.body.data.body, { hello: 'world' });
  t.is(parsed, 0, 'the app after the plugin saw none of its requests');
  // The app's own routes still get their parser.
  t.deepEqual((await postJson(`${origin}/api`, { n: 1 })).body, { app: { n: 1 } });
});
