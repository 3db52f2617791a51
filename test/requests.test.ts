// Request endpoints over real HTTP: message/{path}.do, upload/{path}.do, addListener.do,
// removeListener.do, and who may use a connection id.
import test, { type ExecutionContext } from 'ava';
import { EventSource } from 'eventsource';
import type { ConnectionHandle, ListenersChange, UploadedFile, UploadFields } from '../lib/index.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';
import { assertError, request, type Reply } from './helpers/reply.js';

function postJson(url: string, body: unknown): Promise<Reply> {
  return request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const envelope = (data: unknown) => ({ success: true, code: 200, data, message: null, errorMessage: null });

interface MessageCall {
  path: string;
  connection: ConnectionHandle;
  body: unknown;
}

interface UploadCall {
  path: string;
  connection: ConnectionHandle;
  fields: UploadFields;
  files: UploadedFile[];
}

/** A plugin whose handlers record their calls. */
async function recording(t: ExecutionContext, options: Parameters<typeof startPlugin>[1] = {}) {
  const messages: MessageCall[] = [];
  const uploads: UploadCall[] = [];
  const started = await startPlugin(t, {
    onMessage: (path, _ctx, connection, body) => {
      messages.push({ path, connection, body });
      return { got: body ?? null, path };
    },
    onUpload: (path, _ctx, connection, fields, files) => {
      uploads.push({ path, connection, fields, files });
      return { files: files.map((f) => ({ field: f.fieldName, name: f.filename, size: f.size })), fields };
    },
    ...options,
  });
  return { ...started, messages, uploads };
}

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

// ---- message ---------------------------------------------------------------------------

test("message: onMessage gets path, the caller's connection and the body; answer is the envelope", async (t) => {
  const { base, plugin, messages, errors } = await recording(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const before = await plugin.hub.getConnectionById(stream.connectionId);
  t.is(before?.requests, 0);
  t.is(before?.lastRequestAt, undefined);

  const sentAt = Date.now();
  const reply = await postJson(`${base}/connect/message/greet.do?connectionId=${stream.connectionId}&access-token=7`, {
    hello: 'world',
    n: [1, 2, 3],
  });
  t.is(reply.status, 200, reply.text);
  t.regex(reply.headers.get('content-type') ?? '', /^application\/json/);
  t.deepEqual(reply.body, envelope({ got: { hello: 'world', n: [1, 2, 3] }, path: 'greet' }));

  t.is(messages.length, 1);
  t.is(messages[0]!.path, 'greet');
  t.is(messages[0]!.connection.id, stream.connectionId);
  t.is(messages[0]!.connection.userId, '7');
  t.deepEqual(messages[0]!.body, { hello: 'world', n: [1, 2, 3] });

  const after = await plugin.hub.getConnectionById(stream.connectionId);
  t.is(after?.requests, 1);
  t.is(typeof after?.lastRequestAt, 'number');
  t.true(after!.lastRequestAt! >= sentAt);

  const second = await postJson(`${base}/connect/message/greet.do?connectionId=${stream.connectionId}&access-token=7`, {});
  t.is(second.status, 200);
  const again = await plugin.hub.getConnectionById(stream.connectionId);
  t.is(again?.requests, 2);
  t.true(again!.lastRequestAt! >= after!.lastRequestAt!);
  t.deepEqual(errors, []);
});

test('message: nested paths reach onMessage whole', async (t) => {
  const { base, messages } = await recording(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  for (const path of ['a/b', 'orders/42/read-all', 'x.y_z-1']) {
    const reply = await postJson(`${base}/connect/message/${path}.do?connectionId=${stream.connectionId}&access-token=7`, { p: path });
    t.is(reply.status, 200, reply.text);
    t.is(reply.body.data.path, path);
  }
  t.deepEqual(
    messages.map((m) => m.path),
    ['a/b', 'orders/42/read-all', 'x.y_z-1'],
  );
});

test('message: non-object JSON bodies (string, number, array, null, boolean) and an empty body are accepted', async (t) => {
  const { base, messages } = await recording(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const url = `${base}/connect/message/any.do?connectionId=${stream.connectionId}&access-token=7`;
  const bodies: unknown[] = ['just a string', 42, -1.5, [1, 'two'], null, true];
  for (const body of bodies) {
    const reply = await postJson(url, JSON.stringify(body));
    t.is(reply.status, 200, reply.text);
    t.deepEqual(reply.body.data.got, body);
  }
  const empty = await request(url, { method: 'POST' });
  t.is(empty.status, 200, empty.text);
  t.deepEqual(
    messages.map((m) => m.body),
    [...bodies, undefined],
  );
});

test('message: bigint results keep their precision in the answer', async (t) => {
  const { base } = await startPlugin(t, { onMessage: () => ({ id: 9007199254740993n }) });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const reply = await request(`${base}/connect/message/big.do?connectionId=${stream.connectionId}&access-token=7`, { method: 'POST' });
  t.is(reply.status, 200);
  t.true(reply.text.includes('"9007199254740993"'), reply.text);
});

test('message and upload: without onMessage / onUpload the endpoints are 404', async (t) => {
  const { base } = await startPlugin(t, { onMessage: undefined, onUpload: undefined });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const message = await postJson(`${base}/connect/message/x.do?connectionId=${stream.connectionId}&access-token=7`, {});
  assertError(t, message, 404, 'ERR_SSE_NOT_FOUND');
  const form = new FormData();
  form.append('a', '1');
  const upload = await request(`${base}/connect/upload/x.do?connectionId=${stream.connectionId}&access-token=7`, { method: 'POST', body: form });
  assertError(t, upload, 404, 'ERR_SSE_NOT_FOUND');
});

test('message: a handler throwing a plain Error gives a generic 500 and is reported to the app', async (t) => {
  const boom = new Error('database password is hunter2');
  const { base, errors } = await startPlugin(t, {
    onMessage: () => {
      throw boom;
    },
  });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const reply = await postJson(`${base}/connect/message/x.do?connectionId=${stream.connectionId}&access-token=7`, {});
  assertError(t, reply, 500, 'ERR_SSE_INTERNAL');
  t.is(reply.body.message, 'Internal server error');
  t.false(reply.text.includes('hunter2'));
  t.deepEqual(errors, [boom]);
});

test('message: an async handler that rejects is a 500 as well', async (t) => {
  const boom = new Error('async failure');
  const { base, errors } = await startPlugin(t, { onMessage: async () => Promise.reject(boom) });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const reply = await postJson(`${base}/connect/message/x.do?connectionId=${stream.connectionId}&access-token=7`, {});
  assertError(t, reply, 500, 'ERR_SSE_INTERNAL');
  t.false(reply.text.includes('async failure'));
  t.deepEqual(errors, [boom]);
});

test('message: a handler using ctx.throw(422, ...) answers 422 with its message, not reported', async (t) => {
  const { base, errors } = await startPlugin(t, {
    onMessage: (_path, ctx) => ctx.throw(422, 'nope'),
  });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const reply = await postJson(`${base}/connect/message/x.do?connectionId=${stream.connectionId}&access-token=7`, {});
  t.is(reply.status, 422, reply.text);
  t.is(reply.body.success, false);
  t.is(reply.body.message, 'nope');
  t.is(typeof reply.body.code, 'string');
  t.false(/\\n\s*at /.test(reply.text));
  t.deepEqual(errors, []);
});

// ---- upload ----------------------------------------------------------------------------

test('upload: several files and fields reach onUpload; repeated fields become arrays', async (t) => {
  const { base, plugin, uploads, errors } = await recording(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const form = new FormData();
  form.append('title', 'Quarterly report');
  form.append('tag', 'a');
  form.append('tag', 'b');
  form.append('tag', 'c');
  form.append('doc', new Blob(['hello, world\n'], { type: 'text/plain' }), 'hello.txt');
  form.append('doc', new Blob([bytes(3000)], { type: 'application/octet-stream' }), 'data.bin');
  form.append('avatar', new Blob([bytes(10, 7)], { type: 'image/png' }), 'me.png');
  form.append('empty', new Blob([]), 'empty.txt');

  const sentAt = Date.now();
  const reply = await request(`${base}/connect/upload/files/new.do?connectionId=${stream.connectionId}&access-token=7`, {
    method: 'POST',
    body: form,
  });
  t.is(reply.status, 200, reply.text);
  t.is(reply.body.success, true);
  t.is(reply.body.code, 200);
  t.deepEqual(reply.body.data.files, [
    { field: 'doc', name: 'hello.txt', size: 13 },
    { field: 'doc', name: 'data.bin', size: 3000 },
    { field: 'avatar', name: 'me.png', size: 10 },
    { field: 'empty', name: 'empty.txt', size: 0 },
  ]);

  t.is(uploads.length, 1);
  const call = uploads[0]!;
  t.is(call.path, 'files/new');
  t.is(call.connection.id, stream.connectionId);
  t.deepEqual(call.fields, { title: 'Quarterly report', tag: ['a', 'b', 'c'] });
  t.is(call.files[0]!.data.toString('utf8'), 'hello, world\n');
  t.is(call.files[0]!.mimeType, 'text/plain');
  t.true(call.files[1]!.data.equals(Buffer.from(bytes(3000))));
  t.is(call.files[2]!.mimeType, 'image/png');

  const info = await plugin.hub.getConnectionById(stream.connectionId);
  t.is(info?.uploads, 1);
  t.true(info!.lastRequestAt! >= sentAt);
  t.deepEqual(errors, []);
});

test('upload: exactly uploadLimit bytes is accepted', async (t) => {
  const { base, uploads } = await recording(t, { uploadLimit: 1000 });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const form = new FormData();
  form.append('a', new Blob([bytes(600)]), 'a.bin');
  form.append('b', new Blob([bytes(400)]), 'b.bin');
  const reply = await request(`${base}/connect/upload/x.do?connectionId=${stream.connectionId}&access-token=7`, { method: 'POST', body: form });
  t.is(reply.status, 200, reply.text);
  t.is(uploads.length, 1);
});

test('upload: over uploadLimit (one big file, or several adding up) is 413 and the server still answers', async (t) => {
  const { base, uploads, messages, errors } = await recording(t, { uploadLimit: 1000 });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const url = `${base}/connect/upload/x.do?connectionId=${stream.connectionId}&access-token=7`;

  const big = new FormData();
  big.append('note', 'too big');
  big.append('file', new Blob([bytes(5000)]), 'big.bin');
  assertError(t, await request(url, { method: 'POST', body: big }), 413, 'ERR_SSE_PAYLOAD_TOO_LARGE');

  const many = new FormData();
  for (let i = 0; i < 3; i++) many.append('file', new Blob([bytes(400, i)]), `f${i}.bin`);
  assertError(t, await request(url, { method: 'POST', body: many }), 413, 'ERR_SSE_PAYLOAD_TOO_LARGE');
  t.is(uploads.length, 0);

  // The server is fine afterwards: a small upload and a message go through.
  const small = new FormData();
  small.append('file', new Blob([bytes(100)]), 'small.bin');
  const ok = await request(url, { method: 'POST', body: small });
  t.is(ok.status, 200, ok.text);
  t.is(uploads.length, 1);
  const msg = await postJson(`${base}/connect/message/m.do?connectionId=${stream.connectionId}&access-token=7`, { after: true });
  t.is(msg.status, 200, msg.text);
  t.is(messages.length, 1);
  t.deepEqual(errors, []);
});

test('upload: more files than uploadMaxFiles is 413', async (t) => {
  const { base, uploads, errors } = await recording(t, { uploadMaxFiles: 2 });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const url = `${base}/connect/upload/x.do?connectionId=${stream.connectionId}&access-token=7`;
  const form = new FormData();
  for (let i = 0; i < 3; i++) form.append('file', new Blob([`file ${i}`]), `f${i}.txt`);
  assertError(t, await request(url, { method: 'POST', body: form }), 413, 'ERR_SSE_PAYLOAD_TOO_LARGE');
  t.is(uploads.length, 0);

  const two = new FormData();
  for (let i = 0; i < 2; i++) two.append('file', new Blob([`file ${i}`]), `f${i}.txt`);
  const ok = await request(url, { method: 'POST', body: two });
  t.is(ok.status, 200, ok.text);
  t.is(uploads[0]?.files.length, 2);
  t.deepEqual(errors, []);
});

test('upload: a body that is not multipart is 415', async (t) => {
  const { base, uploads, errors } = await recording(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const url = `${base}/connect/upload/x.do?connectionId=${stream.connectionId}&access-token=7`;
  assertError(t, await postJson(url, { file: 'not really' }), 415, 'ERR_SSE_UNSUPPORTED_MEDIA');
  assertError(
    t,
    await request(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'plain text' }),
    415,
    'ERR_SSE_UNSUPPORTED_MEDIA',
  );
  assertError(t, await request(url, { method: 'POST' }), 415, 'ERR_SSE_UNSUPPORTED_MEDIA');
  t.is(uploads.length, 0);
  // Still serving.
  const form = new FormData();
  form.append('k', 'v');
  const ok = await request(url, { method: 'POST', body: form });
  t.is(ok.status, 200, ok.text);
  t.deepEqual(errors, []);
});

// ---- who may use a connection id -------------------------------------------------------

test("another user's connection id is 403 for message, upload, addListener and removeListener; no handler runs", async (t) => {
  const { base, plugin, messages, uploads, errors } = await recording(t);
  const changes: ListenersChange[] = [];
  plugin.hub.on('listeners-change', (c) => changes.push(c));
  const theirs = await RawStream.open(t, `${base}/connect?access-token=8&listeners=keep`);
  const id = theirs.connectionId;

  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${id}&access-token=7`, { evil: true }), 403, 'ERR_SSE_FORBIDDEN');
  const form = new FormData();
  form.append('file', new Blob(['x']), 'x.txt');
  assertError(
    t,
    await request(`${base}/connect/upload/x.do?connectionId=${id}&access-token=7`, { method: 'POST', body: form }),
    403,
    'ERR_SSE_FORBIDDEN',
  );
  assertError(t, await postJson(`${base}/connect/addListener.do?access-token=7`, { connectionId: id, listener: ['spy'] }), 403, 'ERR_SSE_FORBIDDEN');
  assertError(
    t,
    await postJson(`${base}/connect/removeListener.do?access-token=7`, { connectionId: id, listener: ['keep'] }),
    403,
    'ERR_SSE_FORBIDDEN',
  );
  // Another user id in another tenant is refused too.
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${id}&access-token=9@1`, {}), 403, 'ERR_SSE_FORBIDDEN');

  t.is(messages.length, 0);
  t.is(uploads.length, 0);
  t.is(changes.length, 0);
  const info = await plugin.hub.getConnectionById(id);
  t.deepEqual(info?.listeners, ['keep']);
  t.is(info?.requests, 0);
  t.is(info?.uploads, 0);

  // The owner may.
  const own = await postJson(`${base}/connect/message/x.do?connectionId=${id}&access-token=8`, {});
  t.is(own.status, 200, own.text);
  t.deepEqual(errors, []);
});

test("the connection is checked before the body is read: a stranger's oversized body is 403, the owner's 413", async (t) => {
  const { base, messages, errors } = await recording(t, { jsonLimit: 100 });
  const theirs = await RawStream.open(t, `${base}/connect?access-token=8`);
  const big = { pad: 'x'.repeat(5000) };
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${theirs.connectionId}&access-token=7`, big), 403, 'ERR_SSE_FORBIDDEN');
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=unknown-id&access-token=7`, big), 404, 'ERR_SSE_UNKNOWN_CONNECTION');
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${theirs.connectionId}`, big), 401, 'ERR_SSE_UNAUTHORIZED');
  assertError(
    t,
    await postJson(`${base}/connect/message/x.do?connectionId=${theirs.connectionId}&access-token=8`, big),
    413,
    'ERR_SSE_PAYLOAD_TOO_LARGE',
  );
  t.is(messages.length, 0);
  t.deepEqual(errors, []);
});

test('unknown connection id is 404, a missing one 400, no login 401', async (t) => {
  const { base, messages, uploads, errors } = await recording(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const unknown = 'A'.repeat(24);
  const form = () => {
    const f = new FormData();
    f.append('file', new Blob(['x']), 'x.txt');
    return f;
  };

  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${unknown}&access-token=7`, {}), 404, 'ERR_SSE_UNKNOWN_CONNECTION');
  assertError(
    t,
    await request(`${base}/connect/upload/x.do?connectionId=${unknown}&access-token=7`, { method: 'POST', body: form() }),
    404,
    'ERR_SSE_UNKNOWN_CONNECTION',
  );
  assertError(
    t,
    await postJson(`${base}/connect/addListener.do?access-token=7`, { connectionId: unknown, listener: ['a'] }),
    404,
    'ERR_SSE_UNKNOWN_CONNECTION',
  );
  assertError(
    t,
    await postJson(`${base}/connect/removeListener.do?access-token=7`, { connectionId: unknown, listener: ['a'] }),
    404,
    'ERR_SSE_UNKNOWN_CONNECTION',
  );

  assertError(t, await postJson(`${base}/connect/message/x.do?access-token=7`, {}), 400, 'ERR_SSE_BAD_REQUEST');
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=&access-token=7`, {}), 400, 'ERR_SSE_BAD_REQUEST');
  assertError(t, await request(`${base}/connect/upload/x.do?access-token=7`, { method: 'POST', body: form() }), 400, 'ERR_SSE_BAD_REQUEST');
  assertError(t, await postJson(`${base}/connect/addListener.do?access-token=7`, { listener: ['a'] }), 400, 'ERR_SSE_BAD_REQUEST');
  assertError(t, await postJson(`${base}/connect/removeListener.do?access-token=7`, { listener: ['a'] }), 400, 'ERR_SSE_BAD_REQUEST');

  const id = stream.connectionId;
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${id}`, {}), 401, 'ERR_SSE_UNAUTHORIZED');
  assertError(t, await request(`${base}/connect/upload/x.do?connectionId=${id}`, { method: 'POST', body: form() }), 401, 'ERR_SSE_UNAUTHORIZED');
  assertError(t, await postJson(`${base}/connect/addListener.do`, { connectionId: id, listener: ['a'] }), 401, 'ERR_SSE_UNAUTHORIZED');
  assertError(t, await postJson(`${base}/connect/removeListener.do`, { connectionId: id, listener: ['a'] }), 401, 'ERR_SSE_UNAUTHORIZED');

  t.is(messages.length, 0);
  t.is(uploads.length, 0);
  t.deepEqual(errors, []);
});

test('an anonymous connection (no user id) is matched by its access token', async (t) => {
  const { base, plugin, messages, errors } = await recording(t);
  const anon = await RawStream.open(t, `${base}/connect?access-token=anon`);
  const info = await plugin.hub.getConnectionById(anon.connectionId);
  t.is(info?.userId, undefined);
  t.deepEqual(await plugin.hub.getUserIds(), []);

  const mine = await postJson(`${base}/connect/message/x.do?connectionId=${anon.connectionId}&access-token=anon`, { hi: 1 });
  t.is(mine.status, 200, mine.text);
  t.is(messages[0]?.connection.id, anon.connectionId);
  const listen = await postJson(`${base}/connect/addListener.do?access-token=anon`, { connectionId: anon.connectionId, listener: ['x'] });
  t.is(listen.status, 200, listen.text);
  t.deepEqual(listen.body.data, { listener: ['x'] });

  // A logged-in user, or an anonymous login with another token, does not own it.
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${anon.connectionId}&access-token=7`, {}), 403, 'ERR_SSE_FORBIDDEN');
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${anon.connectionId}&access-token=anon@2`, {}), 403, 'ERR_SSE_FORBIDDEN');
  assertError(
    t,
    await postJson(`${base}/connect/removeListener.do?access-token=anon@2`, { connectionId: anon.connectionId, listener: ['x'] }),
    403,
    'ERR_SSE_FORBIDDEN',
  );
  t.is(messages.length, 1);
  t.deepEqual((await plugin.hub.getConnectionById(anon.connectionId))?.listeners, ['x']);
  // And an anonymous login does not own a real user's connection.
  const user = await RawStream.open(t, `${base}/connect?access-token=7`);
  assertError(t, await postJson(`${base}/connect/message/x.do?connectionId=${user.connectionId}&access-token=anon`, {}), 403, 'ERR_SSE_FORBIDDEN');
  t.deepEqual(errors, []);
});

// ---- listeners -------------------------------------------------------------------------

test('addListener / removeListener answer the current set and decide who gets listening sends', async (t) => {
  const { base, plugin, errors } = await startPlugin(t);
  const changes: { id: string; before: string[]; after: string[] }[] = [];
  plugin.hub.on('listeners-change', ({ connection, before, after }) => changes.push({ id: connection.id, before, after }));
  const a = await RawStream.open(t, `${base}/connect?access-token=7&listeners=base`);
  const b = await RawStream.open(t, `${base}/connect?access-token=8`);

  const added = await postJson(`${base}/connect/addListener.do?access-token=7`, { connectionId: a.connectionId, listener: ['x', 'y'] });
  t.is(added.status, 200, added.text);
  t.deepEqual(added.body, envelope({ listener: ['base', 'x', 'y'] }));
  t.deepEqual(changes, [{ id: a.connectionId, before: ['base'], after: ['base', 'x', 'y'] }]);
  t.deepEqual((await plugin.hub.getConnectionById(a.connectionId))?.listeners, ['base', 'x', 'y']);

  // Adding names already present changes nothing and fires nothing.
  const again = await postJson(`${base}/connect/addListener.do?access-token=7`, { connectionId: a.connectionId, listener: ['x'] });
  t.deepEqual(again.body.data, { listener: ['base', 'x', 'y'] });
  t.is(changes.length, 1);

  t.is(await plugin.hub.sendAll('x', { n: 1 }, { listening: true }), 1);
  t.is(await plugin.hub.sendAll('z', { n: 2 }, { listening: true }), 0);
  t.is(await plugin.hub.sendAll('fence', 'end'), 2);
  await a.next('fence');
  await b.next('fence');
  t.deepEqual(
    a.named('x').map((e) => JSON.parse(e.data)),
    [{ n: 1 }],
  );
  t.deepEqual(b.named('x'), []);
  t.deepEqual(a.named('z'), []);
  t.deepEqual(await plugin.hub.getUserIdsListening('x'), ['7']);

  const removed = await postJson(`${base}/connect/removeListener.do?access-token=7`, {
    connectionId: a.connectionId,
    listener: ['x', 'never-added'],
  });
  t.is(removed.status, 200, removed.text);
  t.deepEqual(removed.body, envelope({ listener: ['base', 'y'] }));
  t.deepEqual(changes[1], { id: a.connectionId, before: ['base', 'x', 'y'], after: ['base', 'y'] });
  t.is(await plugin.hub.sendAll('x', { n: 3 }, { listening: true }), 0);
  t.is(await plugin.hub.sendAll('y', 'why', { listening: true }), 1);
  await a.next('y');
  t.is(a.named('x').length, 1);
  t.deepEqual(await plugin.hub.getUserIdsListening('x'), []);
  t.deepEqual(errors, []);
});

test('addListener also takes the connection id in the query and a comma-separated string', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const a = await RawStream.open(t, `${base}/connect?access-token=7`);
  const reply = await postJson(`${base}/connect/addListener.do?access-token=7&connectionId=${a.connectionId}`, { listener: 'p, q' });
  t.is(reply.status, 200, reply.text);
  t.deepEqual(reply.body.data, { listener: ['p', 'q'] });
  t.is(await plugin.hub.sendAll('q', 1, { listening: true }), 1);
  await a.next('q');
});

test('a real EventSource client: connect, message, addListener, then receive a listening-mode event', async (t) => {
  const { base, plugin, messages, errors } = await recording(t);
  const es = new EventSource(`${base}/connect?access-token=7&clientId=es-1`);
  t.teardown(() => es.close());
  const received: { event: string; data: string }[] = [];
  let wake: () => void = () => {};
  const waitFor = async (pred: () => boolean): Promise<void> => {
    while (!pred()) await new Promise<void>((r) => (wake = r));
  };
  for (const name of ['connect-finish', 'news', 'other']) {
    es.addEventListener(name, (e) => {
      received.push({ event: name, data: (e as MessageEvent).data as string });
      wake();
    });
  }
  es.addEventListener('error', () => wake());
  await waitFor(() => received.length > 0 || es.readyState === EventSource.CLOSED);
  t.is(received[0]?.event, 'connect-finish');
  const { connectionId } = JSON.parse(received[0]!.data);
  t.is(typeof connectionId, 'string');
  t.is((await plugin.hub.getConnectionById(connectionId))?.clientId, 'es-1');

  const msg = await postJson(`${base}/connect/message/hello.do?connectionId=${connectionId}&access-token=7`, JSON.stringify('from es'));
  t.is(msg.status, 200, msg.text);
  t.is(messages[0]?.body, 'from es');
  t.is(messages[0]?.connection.id, connectionId);

  t.is(await plugin.hub.sendAll('news', 'not yet', { listening: true }), 0);
  const add = await postJson(`${base}/connect/addListener.do?access-token=7`, { connectionId, listener: ['news'] });
  t.deepEqual(add.body.data, { listener: ['news'] });
  t.is(await plugin.hub.sendAll('news', { headline: 'line 1\nline 2' }, { listening: true }), 1);
  t.is(await plugin.hub.sendAll('other', 'multi\nline'), 1);
  await waitFor(() => received.some((e) => e.event === 'other'));
  t.deepEqual(received.slice(1), [
    { event: 'news', data: JSON.stringify({ headline: 'line 1\nline 2' }) },
    { event: 'other', data: 'multi\nline' },
  ]);
  t.deepEqual(errors, []);
});
