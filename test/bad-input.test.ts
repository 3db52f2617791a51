// Bad input over real HTTP: every endpoint answers a coded 4xx, never a 5xx, never a stack
// trace, and reports nothing to the app as an error.
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
}

/**
 * A raw HTTP/1.1 request with node:http: any method, any headers, and the body as given
 * (several chunks and no content-length means chunked transfer encoding).
 */
function raw(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer | (string | Buffer)[] } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method ?? 'GET', headers: init.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
    });
    req.on('error', reject);
    const body = init.body;
    if (Array.isArray(body)) for (const chunk of body) req.write(chunk);
    else if (body !== undefined) req.write(body);
    req.end();
  });
}

const post = (url: string, body?: string | Buffer | (string | Buffer)[], contentType = 'application/json', extra: Record<string, string> = {}) =>
  raw(url, { method: 'POST', headers: { 'content-type': contentType, ...extra }, ...(body === undefined ? {} : { body }) });

function assertNoStack(t: ExecutionContext, reply: Reply): void {
  t.false(/\n\s*at |\\n\s*at |node:internal|\.ts:\d+|\.js:\d+/.test(reply.text), `stack trace in ${reply.text}`);
}

function assertError(t: ExecutionContext, reply: Reply, status: number, code: string): void {
  t.is(reply.status, status, reply.text);
  t.is(reply.body?.success, false, reply.text);
  t.is(reply.body?.code, code, reply.text);
  t.regex(String(reply.headers['content-type']), /^application\/json/);
  assertNoStack(t, reply);
}

/** A plugin with small body limits, a pass-through handler after it, and handler call counts. */
async function setup(
  t: ExecutionContext,
  options: Parameters<typeof startPlugin>[1] = {},
): Promise<StartedPlugin & { calls: { message: number; upload: number } }> {
  const calls = { message: 0, upload: 0 };
  const started = await startPlugin(
    t,
    {
      jsonLimit: 200,
      uploadLimit: 1000,
      onMessage: () => {
        calls.message++;
        return 'ok';
      },
      onUpload: () => {
        calls.upload++;
        return 'ok';
      },
      ...options,
    },
    (app) => {
      app.use(async (ctx) => {
        ctx.body = `next:${ctx.path}`;
      });
    },
  );
  return { ...started, calls };
}

test('malformed JSON is 400 on every JSON endpoint, and no handler runs', async (t) => {
  const { base, plugin, calls, errors } = await setup(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const id = stream.connectionId;
  for (const bad of ['{', '{"a":', 'nope', '{"a":1}}', "{'a':1}", '[1,]', '\u0000']) {
    assertError(t, await post(`${base}/connect/message/x.do?connectionId=${id}&access-token=7`, bad), 400, 'ERR_SSE_BAD_REQUEST');
    assertError(t, await post(`${base}/connect/addListener.do?access-token=7`, bad), 400, 'ERR_SSE_BAD_REQUEST');
    assertError(t, await post(`${base}/connect/removeListener.do?access-token=7`, bad), 400, 'ERR_SSE_BAD_REQUEST');
    assertError(t, await post(`${base}/connect?access-token=7`, bad), 400, 'ERR_SSE_BAD_REQUEST');
  }
  assertError(t, await post(`${base}/connect/disconnect.do`, `{"connectionId":"${id}"`, 'application/json'), 400, 'ERR_SSE_BAD_REQUEST');
  t.is(calls.message, 0);
  t.is(await plugin.hub.getConnectionCount(), 1, 'no stream opened, the existing one untouched');
  t.false(stream.ended);
  t.deepEqual(errors, []);
});

test('JSON bodies of the wrong shape are 400 where an object is required', async (t) => {
  const { base, plugin, errors } = await setup(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  for (const body of ['[]', '"text"', '42', 'null', 'true']) {
    assertError(t, await post(`${base}/connect/addListener.do?access-token=7&connectionId=${stream.connectionId}`, body), 400, 'ERR_SSE_BAD_REQUEST');
    assertError(t, await post(`${base}/connect?access-token=7`, body), 400, 'ERR_SSE_BAD_REQUEST');
  }
  for (const connectionId of [42, true, { id: 'x' }, [], 'x'.repeat(129)]) {
    assertError(
      t,
      await post(`${base}/connect/addListener.do?access-token=7`, JSON.stringify({ connectionId, listener: ['a'] })),
      400,
      'ERR_SSE_BAD_REQUEST',
    );
  }
  t.is(await plugin.hub.getConnectionCount(), 1);
  t.deepEqual(errors, []);
});

test('a JSON body over jsonLimit is 413 (with or without content-length, also compressed), and the server keeps answering', async (t) => {
  const { base, calls, plugin, errors } = await setup(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const message = `${base}/connect/message/x.do?connectionId=${stream.connectionId}&access-token=7`;
  const big = JSON.stringify({ pad: 'x'.repeat(1000) });

  assertError(t, await post(message, big), 413, 'ERR_SSE_PAYLOAD_TOO_LARGE');
  assertError(t, await post(message, [big.slice(0, 500), big.slice(500)]), 413, 'ERR_SSE_PAYLOAD_TOO_LARGE');
  assertError(t, await post(message, gzipSync(big), 'application/json', { 'content-encoding': 'gzip' }), 413, 'ERR_SSE_PAYLOAD_TOO_LARGE');
  assertError(
    t,
    await post(
      `${base}/connect/addListener.do?access-token=7`,
      JSON.stringify({ connectionId: stream.connectionId, listener: ['x'], pad: 'x'.repeat(1000) }),
    ),
    413,
    'ERR_SSE_PAYLOAD_TOO_LARGE',
  );
  assertError(
    t,
    await post(`${base}/connect?access-token=7`, JSON.stringify({ clientId: 'c', pad: 'x'.repeat(1000) })),
    413,
    'ERR_SSE_PAYLOAD_TOO_LARGE',
  );
  t.is(calls.message, 0);
  t.deepEqual((await plugin.hub.getConnectionById(stream.connectionId))?.listeners, []);

  // Just under the limit, and a compressed small body, are fine; the server is still healthy.
  const fits = JSON.stringify({ pad: 'x'.repeat(150) });
  t.true(Buffer.byteLength(fits) <= 200);
  t.is((await post(message, fits)).status, 200);
  t.is((await post(message, gzipSync(fits), 'application/json', { 'content-encoding': 'gzip' })).status, 200);
  t.is(calls.message, 2);
  t.deepEqual(errors, []);
});

test('a body in an unsupported or corrupt content-encoding is a 4xx, not a 500', async (t) => {
  const { base, calls, errors } = await setup(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const message = `${base}/connect/message/x.do?connectionId=${stream.connectionId}&access-token=7`;
  assertError(t, await post(message, '{}', 'application/json', { 'content-encoding': 'compress' }), 415, 'ERR_SSE_UNSUPPORTED_MEDIA');
  const corrupt = await post(message, 'this is not gzip', 'application/json', { 'content-encoding': 'gzip' });
  assertError(t, corrupt, 400, 'ERR_SSE_BAD_REQUEST');
  const truncated = await post(message, gzipSync('{"a":1}').subarray(0, 12), 'application/json', { 'content-encoding': 'gzip' });
  assertError(t, truncated, 400, 'ERR_SSE_BAD_REQUEST');
  const beacon = await post(`${base}/connect/disconnect.do`, 'not gzip either', 'text/plain', { 'content-encoding': 'gzip' });
  assertError(t, beacon, 400, 'ERR_SSE_BAD_REQUEST');
  t.is(calls.message, 0);
  t.false(stream.ended);
  t.deepEqual(errors, []);
});

test('wrong methods are 405 with an Allow header', async (t) => {
  const { base, errors } = await setup(t);
  const cases: [method: string, path: string, allow: string][] = [
    ['GET', '/connect/addListener.do', 'POST'],
    ['GET', '/connect/removeListener.do', 'POST'],
    ['GET', '/connect/disconnect.do', 'POST'],
    ['PUT', '/connect/addListener.do', 'POST'],
    ['GET', '/connect/message/x.do', 'POST'],
    ['DELETE', '/connect/upload/x.do', 'POST'],
    ['POST', '/connect/users.json', 'GET'],
    ['DELETE', '/connect/connections.json', 'GET'],
    ['PUT', '/connect', 'GET, POST'],
  ];
  for (const [method, path, allow] of cases) {
    const reply = await raw(`${base}${path}?access-token=7`, { method });
    assertError(t, reply, 405, 'ERR_SSE_METHOD_NOT_ALLOWED');
    t.is(reply.headers.allow, allow, `${method} ${path}`);
  }
  t.deepEqual(errors, []);
});

test('unknown paths under the base are 404 ERR_SSE_NOT_FOUND', async (t) => {
  const { base, calls, errors } = await setup(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const q = `?connectionId=${stream.connectionId}&access-token=7`;
  for (const path of [
    '/nope',
    '/connect/',
    '/connect/nope.do',
    '/connect/addListener',
    '/connect/message/x',
    '/connect/message/.do',
    '/connect/message/a..b.do',
    '/connect/message/%2e%2e/x.do',
    '/connect/message/a%20b.do',
    '/connect/message/a%0Ab.do',
    `/connect/message/${'a'.repeat(201)}.do`,
    '/connect/upload/.do',
    '/connect/ack.do/extra',
  ]) {
    for (const method of ['GET', 'POST']) {
      const init = method === 'POST' ? { method, headers: { 'content-type': 'application/json' }, body: '{}' } : { method };
      assertError(t, await raw(`${base}${path}${q}`, init), 404, 'ERR_SSE_NOT_FOUND');
    }
  }
  t.is(calls.message, 0);
  t.deepEqual(errors, []);
});

test('paths outside the base pass through to the next middleware', async (t) => {
  const { origin, errors } = await setup(t);
  for (const path of ['/', '/other', '/sse', '/sse/', '/sse/testing', '/sse/test-x/connect', '/x/sse/test/connect']) {
    const reply = await raw(`${origin}${path}`);
    t.is(reply.status, 200, path);
    t.is(reply.text, `next:${path}`);
  }
  t.deepEqual(errors, []);
});

test('invalid listener names are 400, on addListener and on connect', async (t) => {
  const { base, plugin, errors } = await setup(t, { jsonLimit: 100_000 });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const add = (listener: unknown) =>
    post(`${base}/connect/addListener.do?access-token=7`, JSON.stringify({ connectionId: stream.connectionId, listener }));
  for (const listener of [
    ['a\nb'],
    ['ok', 'a\rb'],
    ['a\u0000b'],
    ['a,b'],
    [1],
    [null],
    [{}],
    ['x'.repeat(129)],
    Array.from({ length: 257 }, (_, i) => `n${i}`),
    'a\nb',
    7,
  ]) {
    assertError(t, await add(listener), 400, 'ERR_SSE_BAD_REQUEST');
  }
  t.deepEqual((await plugin.hub.getConnectionById(stream.connectionId))?.listeners, [], 'nothing half-applied');
  for (const listeners of ['a%0Ab', 'a%0Db', 'a%00b', 'x'.repeat(129)]) {
    assertError(t, await raw(`${base}/connect?access-token=7&listeners=${listeners}`), 400, 'ERR_SSE_BAD_REQUEST');
  }
  assertError(t, await post(`${base}/connect?access-token=7`, JSON.stringify({ listeners: ['ok', 'bad\nname'] })), 400, 'ERR_SSE_BAD_REQUEST');
  t.is(await plugin.hub.getConnectionCount(), 1);
  t.deepEqual(errors, []);
});

test('bad connect parameters are 400 and open no stream', async (t) => {
  const { base, plugin, errors } = await setup(t);
  let connects = 0;
  plugin.hub.on('connect', () => connects++);
  const bad = [
    'keepaliveTime=-5',
    'keepaliveTime=abc',
    'keepaliveTime=Infinity',
    'sessionDuration=-1',
    'accessTime=NaN',
    `clientId=${'c'.repeat(129)}`,
    `clientVersion=${'v'.repeat(65)}`,
    `channel=${'c'.repeat(257)}`,
    `screen=${'s'.repeat(65)}`,
    `locationHref=${'h'.repeat(2049)}`,
    'lastEventId=a%0Ab',
    `lastEventId=${'i'.repeat(129)}`,
    `app=${'v'.repeat(1025)}`,
    Array.from({ length: 33 }, (_, i) => `extra${i}=1`).join('&'),
  ];
  for (const query of bad) {
    assertError(t, await raw(`${base}/connect?access-token=7&${query}`), 400, 'ERR_SSE_BAD_REQUEST');
  }
  assertError(t, await post(`${base}/connect?access-token=7`, JSON.stringify({ keepaliveTime: -5 })), 400, 'ERR_SSE_BAD_REQUEST');
  assertError(t, await post(`${base}/connect?access-token=7`, JSON.stringify({ clientId: { nested: true } })), 400, 'ERR_SSE_BAD_REQUEST');
  t.is(connects, 0);
  t.is(await plugin.hub.getConnectionCount(), 0);

  // The limits themselves are accepted.
  const fine = await RawStream.open(t, `${base}/connect?access-token=7&clientId=${'c'.repeat(128)}&keepaliveTime=0&sessionDuration=0`);
  t.is(fine.status, 200);
  t.deepEqual(errors, []);
});

test('connect without a login is 401 and opens nothing', async (t) => {
  const { base, plugin, errors } = await setup(t);
  for (const url of [`${base}/connect`, `${base}/connect?access-token=`, `${base}/connect?other=1`]) {
    const get = await raw(url);
    assertError(t, get, 401, 'ERR_SSE_UNAUTHORIZED');
    t.notRegex(String(get.headers['content-type']), /event-stream/);
    assertError(t, await post(url, '{}'), 401, 'ERR_SSE_UNAUTHORIZED');
  }
  const stream = await RawStream.open(t, `${base}/connect`);
  t.is(stream.status, 401);
  t.is(await plugin.hub.getConnectionCount(), 0);
  t.deepEqual(errors, []);
});

test('malformed or truncated multipart uploads are a 4xx and the handler never runs', async (t) => {
  const { base, calls, errors } = await setup(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const url = `${base}/connect/upload/x.do?connectionId=${stream.connectionId}&access-token=7`;
  const noBoundary = await post(url, 'whatever', 'multipart/form-data');
  t.true(noBoundary.status === 400 || noBoundary.status === 415, noBoundary.text);
  assertNoStack(t, noBoundary);
  const truncated = ['--XB', 'Content-Disposition: form-data; name="file"; filename="a.txt"', 'Content-Type: text/plain', '', 'half a file'].join(
    '\r\n',
  );
  assertError(t, await post(url, truncated, 'multipart/form-data; boundary=XB'), 400, 'ERR_SSE_BAD_REQUEST');
  const garbage = await post(url, 'garbage without any boundary line', 'multipart/form-data; boundary=XB');
  t.true(garbage.status >= 400 && garbage.status < 500, garbage.text);
  assertNoStack(t, garbage);
  // The beacon form skips files, but a form cut off inside one is still just a bad request.
  assertError(t, await post(`${base}/connect/disconnect.do`, truncated, 'multipart/form-data; boundary=XB'), 400, 'ERR_SSE_BAD_REQUEST');
  t.false(stream.ended);
  t.is(calls.upload, 0);
  t.deepEqual(errors, []);
});

test('fuzz: random bodies and content types on every endpoint never give a 5xx or an app error', async (t) => {
  const { base, errors } = await setup(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const paths = [
    `/connect/message/x.do?connectionId=${stream.connectionId}&access-token=7`,
    `/connect/upload/x.do?connectionId=${stream.connectionId}&access-token=7`,
    '/connect/addListener.do?access-token=7',
    '/connect/removeListener.do?access-token=7',
    '/connect/disconnect.do',
    '/connect/users.json?access-token=admin',
    '/connect/nope',
  ];
  const contentTypes = [
    'application/json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=B',
    'multipart/form-data',
    'application/octet-stream',
    'bogus',
  ];
  const bodies = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.json({ maxDepth: 3 }),
    fc
      .record({ connectionId: fc.oneof(fc.constant(stream.connectionId), fc.string()), listener: fc.anything({ maxDepth: 2 }) })
      .map((o) => JSON.stringify(o)),
    fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
    fc.constantFrom(
      '--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B--\r\n',
      '--B\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n\r\npart of a file',
      '--B\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n',
      '--B\r\n\r\n',
      'a=1&a=2&connectionId=zz',
    ),
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...paths), fc.constantFrom(...contentTypes), bodies, async (path, type, body) => {
      const reply = await post(`${base}${path}`, body, type);
      if (reply.status >= 500) throw new Error(`${reply.status} for ${path} ${type} ${JSON.stringify(String(body))}: ${reply.text}`);
      if (/\\n\s*at /.test(reply.text)) throw new Error(`stack trace: ${reply.text}`);
      if (errors.length > 0) throw new Error(`reported: ${String(errors[0])}`);
    }),
    { numRuns: 300 },
  );
  t.deepEqual(errors, []);
});
