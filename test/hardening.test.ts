// One test per attack or fault found by the hardening review (see SECURITY.md), through the
// public surface: HTTP, or real processes where the fault needs them.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createHub, SseStoreError } from '../lib/index.js';
import http from 'node:http';
import { assertError, request, type Reply } from './helpers/reply.js';
import { postJson, startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sse-hardening-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('unbounded listeners: the total per connection is capped, an addition past it is a 400 and changes nothing', async (t) => {
  const { base, plugin } = await startPlugin(t, { maxListenersPerConnection: 300 });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7&listeners=a,b`);
  const names = (from: number, n: number) => Array.from({ length: n }, (_, i) => `e${from + i}`);
  const url = `${base}/connect/addListener.do?access-token=7`;
  const first = await postJson(url, { connectionId: stream.connectionId, listener: names(0, 250) });
  t.is(first.status, 200);
  t.is(first.body.data.listener.length, 252);
  // 800 calls of 256 new names each gave one stream 204,800 listeners before the cap.
  const refused = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ connectionId: stream.connectionId, listener: names(250, 256) }),
  });
  assertError(t, refused, 400, 'ERR_SSE_TOO_MANY_LISTENERS');
  const conn = plugin.hub.getLocalConnection(stream.connectionId)!;
  t.is(conn.listeners.size, 252, 'a refused addition changes nothing');
  // Names already listened to do not count again; filling up to the cap exactly is allowed.
  const upTo = await postJson(url, { connectionId: stream.connectionId, listener: [...names(0, 10), ...names(250, 48)] });
  t.is(upTo.status, 200);
  t.is(upTo.body.data.listener.length, 300);
  assertError(
    t,
    await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ connectionId: stream.connectionId, listener: ['one-more'] }),
    }),
    400,
    'ERR_SSE_TOO_MANY_LISTENERS',
  );
  // The connect parameter is held to the same cap.
  const small = await startPlugin(t, { maxListenersPerConnection: 2 });
  const tooMany = await RawStream.open(t, `${small.base}/connect?access-token=7&listeners=a,b,c`);
  t.is(tooMany.status, 400);
});

test('form fields with built-in names are plain values; __proto__ changes no prototype', async (t) => {
  let seen: Record<string, unknown> | undefined;
  const { base } = await startPlugin(t, {
    onUpload: (_path, _ctx, _conn, fields) => {
      seen = fields;
      return { keys: Object.keys(fields) };
    },
  });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const form = new FormData();
  form.append('toString', 'a');
  form.append('__proto__', 'b');
  form.append('__proto__', 'c');
  form.append('name', 'x');
  const reply = await request(`${base}/connect/upload/doc.do?access-token=7&connectionId=${stream.connectionId}`, { method: 'POST', body: form });
  t.is(reply.status, 200, reply.text);
  t.truthy(seen);
  t.is(Object.getPrototypeOf(seen), null);
  t.is(Reflect.get(seen!, 'toString'), 'a');
  t.is(Reflect.get(seen!, 'hasOwnProperty'), undefined, 'no inherited method leaks in as a field');
  t.deepEqual(seen!['__proto__'], ['b', 'c']);
  t.is(seen!.name, 'x');
});

test('a __proto__ key in a connect body or query is an attribute, not a prototype change', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const res = await fetch(`${base}/connect?access-token=7`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"__proto__": {"ack": "1", "polluted": true}, "clientId": "c1"}',
  });
  t.is(res.status, 200);
  const [conn] = [...plugin.hub.connections()];
  t.is(conn!.client.ack, false, 'an inherited ack=1 must not switch acknowledgements on');
  t.is(conn!.client.clientId, 'c1');
  t.is(({} as Record<string, unknown>).polluted, undefined);
  await res.body?.cancel();
});

test('deeply nested JSON in a connect body or a request is a 400, not a 500', async (t) => {
  const { base, errors } = await startPlugin(t);
  const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
  const connect = await request(`${base}/connect?access-token=7`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep });
  assertError(t, connect, 400, 'ERR_SSE_BAD_REQUEST');
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const message = await request(`${base}/connect/message/x.do?access-token=7&connectionId=${stream.connectionId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `${'['.repeat(65)}${']'.repeat(65)}`,
  });
  assertError(t, message, 400, 'ERR_SSE_BAD_REQUEST');
  // Refused for its depth, not because it failed to parse: the client is told which.
  t.regex(String(message.body?.message), /nested deeper than 64 levels/);
  // 64 levels are fine; brackets inside strings do not count.
  const ok = await postJson(
    `${base}/connect/message/x.do?access-token=7&connectionId=${stream.connectionId}`,
    `${'['.repeat(64)}"[[[[{{{{"${']'.repeat(64)}`,
  );
  t.is(ok.status, 200);
  t.deepEqual(errors, []);
});

test('two processes on one store file: the second fails at start with ERR_SSE_STORE_LOCKED; after the first exits it opens', async (t) => {
  const file = join(tempDir(t), 'shared.db');
  const child = spawn(process.execPath, ['--import=tsx', 'test/fixtures/qos-crash-child.ts', 'serve', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => line.startsWith('port ') && resolve());
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
  const error = t.throws(() => createHub({ qos: { file, lockTimeoutMs: 200 } }), { instanceOf: SseStoreError });
  t.is(error?.code, 'ERR_SSE_STORE_LOCKED');
  t.regex(error!.message, /in use by another process/);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const hub = createHub({ qos: { file, lockTimeoutMs: 200 } });
  const sent = await hub.qos.sendByUserId(1, 'x', 1);
  t.truthy(sent.messageId);
  await hub.close();
});

test('a damaged store file fails at start with ERR_SSE_STORE_CORRUPT, not on every ack later', async (t) => {
  const file = join(tempDir(t), 'damaged.db');
  const hub = createHub({ qos: { file } });
  for (let i = 0; i < 200; i++) await hub.qos.sendByUserId(i, 'fill', 'x'.repeat(2000));
  await hub.close();
  // Keep the 100-byte header valid (the file still opens), break the pages after it.
  const size = statSync(file).size;
  t.true(size > 64 * 1024);
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(32 * 1024, 0xa5), 0, 32 * 1024, 8192);
  closeSync(fd);
  const error = t.throws(() => createHub({ qos: { file } }), { instanceOf: SseStoreError });
  t.is(error?.code, 'ERR_SSE_STORE_CORRUPT');
  t.regex(error!.message, /damaged/);
});

test('cross-site admin calls: a form on another site cannot kick; Sec-Fetch-Site and Origin of other sites are refused', async (t) => {
  const { base, origin } = await startPlugin(t, { adminOrigins: ['https://admin.example.com'] });
  const victim = await RawStream.open(t, `${base}/connect?access-token=77`);
  // node:http, not fetch: fetch drops the browser-only headers Origin and Sec-Fetch-Site.
  const kick = (headers: Record<string, string>, body = JSON.stringify({ userId: '77', x: '=' })) =>
    raw(`${base}/connect/kick.do?access-token=admin`, 'POST', headers, body);
  // The plain HTML form of the report: text/plain, a body that parses as JSON.
  assertError(t, await kick({ 'content-type': 'text/plain' }), 415, 'ERR_SSE_UNSUPPORTED_MEDIA');
  assertError(t, await kick({ 'content-type': 'application/x-www-form-urlencoded' }), 415, 'ERR_SSE_UNSUPPORTED_MEDIA');
  // A browser marks the request as coming from another site, or names its origin.
  assertError(t, await kick({ 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }), 403, 'ERR_SSE_CROSS_SITE');
  assertError(t, await kick({ 'content-type': 'application/json', origin: 'https://evil.example' }), 403, 'ERR_SSE_CROSS_SITE');
  assertError(t, await raw(`${base}/connect/users.json?access-token=admin`, 'GET', { 'sec-fetch-site': 'cross-site' }), 403, 'ERR_SSE_CROSS_SITE');
  t.false(victim.ended, 'nothing was kicked');
  t.is((await raw(`${base}/connect/users.json?access-token=admin`, 'GET', { origin })).status, 200, 'the own origin is fine');
  t.is(
    (await raw(`${base}/connect/users.json?access-token=admin`, 'GET', { origin: 'https://admin.example.com', 'sec-fetch-site': 'cross-site' }))
      .status,
    200,
    'a configured admin origin is fine',
  );
  const ok = await kick({ 'content-type': 'application/json', 'sec-fetch-site': 'same-origin', origin });
  t.is(ok.status, 200, ok.text);
  t.deepEqual(ok.body.data, { closed: 1 });
});

/** A request through node:http, which sends every header given. */
function raw(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res
        .on('data', (c: Buffer) => chunks.push(c))
        .on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: new Headers(res.headers as Record<string, string>), text, body: parsed });
        });
    });
    req.on('error', reject);
    req.end(body);
  });
}
