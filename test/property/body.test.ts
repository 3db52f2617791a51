// Property-based tests of the request body readers (lib/http/body.ts) over a fake Koa context
// fed arbitrary bytes and headers: they answer a value or one of our 4xx errors (400, 413, 415),
// never another error; JSON reads back what was sent; `__proto__` never reaches a prototype;
// nothing past the limit is accepted.
import test from 'ava';
import fc from 'fast-check';
import type { Context } from 'koa';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { SseError } from '../../lib/core/errors.js';
import { readBeaconForm, readJson, readJsonObject, readMultipart } from '../../lib/http/body.js';

/**
 * A request carrying `body` (in `chunks` pieces) with `headers`, as Koa hands it to an endpoint;
 * `parsed`: the body another middleware (a body parser before the plugin) already read.
 */
function contextOf(body: Buffer, headers: Record<string, string | undefined>, chunks = 1, parsed?: unknown): Context {
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) lower[k.toLowerCase()] = v;
  const size = Math.max(1, Math.ceil(body.length / chunks));
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) parts.push(body.subarray(i, i + size));
  const req = Object.assign(Readable.from(parts), { headers: lower });
  const set: Record<string, string> = {};
  const request = parsed === undefined ? {} : { body: parsed };
  return { req, request, get: (name: string) => lower[name.toLowerCase()] ?? '', set: (k: string, v: string) => (set[k] = v) } as unknown as Context;
}

/** Our error with a 4xx status, or a failure naming what was thrown instead. */
function assertOurs(t: import('ava').ExecutionContext, err: unknown, what: string): void {
  t.true(err instanceof SseError && err.status >= 400 && err.status < 500, `${String(err)} (${(err as { code?: string })?.code}) for ${what}`);
}

const protoKeys = (): string[] => Object.getOwnPropertyNames(Object.prototype).sort();

const jsonTypes = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/merge-patch+json', 'APPLICATION/JSON');
const anyType = fc.oneof(jsonTypes, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', '', 'json', '+json', 'a/b+json'), fc.string());
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v))),
  fc
    .constantFrom('{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '[', '{"a":', '\uFEFF{}', '{}{}', '1e999', 'null')
    .map((s) => Buffer.from(s)),
);
/** What Content-Length says: the truth, absent (chunked), or a lie. */
const lengthHeader = fc.oneof(
  fc.constant('truth'),
  fc.constant(undefined),
  fc.constantFrom('0', '-1', 'abc', '99999999999'),
  fc.nat({ max: 400 }).map(String),
);
const encoding = fc.option(fc.constantFrom('identity', 'gzip', 'deflate', 'br', 'bogus', 'gzip, gzip'), { nil: undefined });

test('readJson / readJsonObject on any bytes and headers: a value or 400 / 413 / 415, never another error, never a prototype change', async (t) => {
  const before = protoKeys();
  await fc.assert(
    fc.asyncProperty(
      bytes,
      anyType,
      lengthHeader,
      encoding,
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 16, max: 400 }),
      async (body, type, length, enc, chunks, limit) => {
        const headers = {
          'content-type': type,
          'content-length': length === 'truth' ? String(body.length) : length,
          'transfer-encoding': length === undefined ? 'chunked' : undefined,
          'content-encoding': enc,
        };
        for (const read of [readJson, readJsonObject]) {
          try {
            const value = await read(contextOf(body, headers, chunks), limit);
            if (read === readJsonObject) t.true(value !== null && typeof value === 'object' && !Array.isArray(value));
            // Nothing past the limit was accepted.
            t.true(body.length <= limit || (enc !== undefined && enc !== 'identity'), `${body.length} bytes accepted with a limit of ${limit}`);
          } catch (err) {
            assertOurs(t, err, `${JSON.stringify(body.toString('latin1').slice(0, 80))} ${JSON.stringify(headers)}`);
          }
        }
        t.is(({} as { polluted?: unknown }).polluted, undefined);
      },
    ),
    { numRuns: 1500 },
  );
  t.deepEqual(protoKeys(), before);
});

test('JSON objects read back as sent (own `__proto__` keys included), whatever the chunking and encoding', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'toString')), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 8 }),
      fc.integer({ min: 1, max: 6 }),
      fc.boolean(),
      async (object, chunks, gzip) => {
        const text = JSON.stringify(object);
        const body = gzip ? gzipSync(text) : Buffer.from(text);
        const headers = { 'content-type': 'application/json', 'content-length': String(body.length), 'content-encoding': gzip ? 'gzip' : undefined };
        const read = await readJsonObject(contextOf(body, headers, chunks), 1024 * 1024);
        t.deepEqual(read, JSON.parse(text));
        t.is(Object.getPrototypeOf(read), Object.prototype);
      },
    ),
    { numRuns: 500 },
  );
  t.is(({} as { polluted?: unknown }).polluted, undefined);
});

test('bounded: nesting deeper than 64 is 400 before it is parsed; a body over the limit is 413 whatever Content-Length says', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 200 }), async (depth) => {
      const body = Buffer.from('['.repeat(depth) + ']'.repeat(depth));
      const ctx = contextOf(body, { 'content-type': 'application/json', 'content-length': String(body.length) });
      if (depth <= 64) t.deepEqual(JSON.stringify(await readJson(ctx, 1024)), '['.repeat(depth) + ']'.repeat(depth));
      else await t.throwsAsync(readJson(ctx, 1024), { instanceOf: SseError, code: 'ERR_SSE_BAD_REQUEST' } as never);
    }),
    { numRuns: 100 },
  );
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 300 }), fc.boolean(), async (limit, extra, declared) => {
      const body = Buffer.from(JSON.stringify({ a: 'x'.repeat(limit + extra) }));
      const headers = {
        'content-type': 'application/json',
        'content-length': declared ? String(body.length) : undefined,
        'transfer-encoding': declared ? undefined : 'chunked',
      };
      await t.throwsAsync(readJson(contextOf(body, headers, 3), limit), { instanceOf: SseError, code: 'ERR_SSE_PAYLOAD_TOO_LARGE' } as never);
    }),
    { numRuns: 100 },
  );
});

test('readBeaconForm and readMultipart on any bytes: a map or 400 / 413 / 415; form fields never reach a prototype', async (t) => {
  const before = protoKeys();
  const formTypes = fc.oneof(
    fc.constantFrom(
      'multipart/form-data; boundary=B',
      'multipart/form-data',
      'application/x-www-form-urlencoded',
      'text/plain',
      'application/json',
      '',
    ),
    fc.string({ maxLength: 40 }),
  );
  const formBodies = fc.oneof(
    bytes,
    fc
      .constantFrom(
        '__proto__=1&constructor=2&toString=3&a=1&a=2',
        '--B\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\nv\r\n--B--\r\n',
        '--B\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n\r\npart of a file',
        '--B\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n\r\nfile\r\n--B--\r\n',
        '--B\r\n\r\n',
        '{"__proto__":{"polluted":1}}',
      )
      .map((s) => Buffer.from(s)),
  );
  await fc.assert(
    fc.asyncProperty(formBodies, formTypes, fc.integer({ min: 1, max: 4 }), async (body, type, chunks) => {
      const headers = { 'content-type': type, 'content-length': String(body.length) };
      try {
        const fields = await readBeaconForm(contextOf(body, headers, chunks), 1024);
        t.true(fields !== null && typeof fields === 'object');
      } catch (err) {
        assertOurs(t, err, `beacon ${JSON.stringify(body.toString('latin1').slice(0, 80))} ${type}`);
      }
      try {
        const { fields, files } = await readMultipart(contextOf(body, headers, chunks), { totalBytes: 64, maxFiles: 1 });
        t.is(Object.getPrototypeOf(fields), null);
        t.true(files.length <= 1 && files.every((f) => f.size <= 64));
      } catch (err) {
        assertOurs(t, err, `multipart ${JSON.stringify(body.toString('latin1').slice(0, 80))} ${type}`);
      }
      t.is(({} as { polluted?: unknown }).polluted, undefined);
    }),
    { numRuns: 800 },
  );
  t.deepEqual(protoKeys(), before);
});

test("a corrupt brotli body is the client's 400, not a 500 (found by the first property)", async (t) => {
  const body = Buffer.from('{"not":"brotli"}');
  const ctx = contextOf(body, { 'content-type': 'application/json', 'content-length': String(body.length), 'content-encoding': 'br' });
  await t.throwsAsync(readJson(ctx, 1024), { instanceOf: SseError, code: 'ERR_SSE_BAD_REQUEST' } as never);
});

test('a body another middleware parsed (any JSON value, `__proto__` keys, deep nesting): a value or 400, never a prototype change', async (t) => {
  const before = protoKeys();
  const parsed = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.string({ maxLength: 60 }),
    fc.constantFrom('{"a":1}', '[', '{"__proto__":{"polluted":1}}', ' '),
    fc.integer({ min: 60, max: 70 }).map((d) => JSON.parse('['.repeat(d) + ']'.repeat(d)) as unknown),
    fc.constant(JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}') as unknown),
  );
  await fc.assert(
    fc.asyncProperty(parsed, async (value) => {
      const ctx = (): Context => contextOf(Buffer.alloc(0), { 'content-type': 'application/json' }, 1, value);
      try {
        const object = await readJsonObject(ctx(), 1024);
        t.true(object !== null && typeof object === 'object' && !Array.isArray(object));
      } catch (err) {
        assertOurs(t, err, JSON.stringify(value));
      }
      try {
        const fields = await readBeaconForm(ctx(), 1024);
        t.true(fields !== null && typeof fields === 'object');
      } catch (err) {
        assertOurs(t, err, JSON.stringify(value));
      }
      t.is(({} as { polluted?: unknown }).polluted, undefined);
    }),
    { numRuns: 500 },
  );
  t.deepEqual(protoKeys(), before);
});
