// The browser client as the plugin serves it: compressed as the browser asks, revalidated on
// its plain URL, cached for a year on its versioned URL (plugin.clientUrl()).
import test from 'ava';
import { request as httpRequest } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { startPlugin } from './helpers/server.js';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A GET that shows the bytes on the wire (fetch would decompress them). */
function rawGet(url: string, headers: Record<string, string>): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('sse.js is sent with brotli or gzip as accepted, each with its own ETag, Vary: Accept-Encoding', async (t) => {
  const { base } = await startPlugin(t);
  const plain = await rawGet(`${base}/sse.js`, { 'accept-encoding': 'identity' });
  const br = await rawGet(`${base}/sse.js`, { 'accept-encoding': 'gzip, deflate, br' });
  const gz = await rawGet(`${base}/sse.js`, { 'accept-encoding': 'gzip' });
  t.is(plain.status, 200);
  t.is(plain.headers['content-encoding'], undefined);
  t.is(br.headers['content-encoding'], 'br');
  t.is(gz.headers['content-encoding'], 'gzip');
  t.deepEqual(brotliDecompressSync(br.body), plain.body);
  t.deepEqual(gunzipSync(gz.body), plain.body);
  t.true(br.body.length * 3 < plain.body.length, `brotli ${br.body.length} B of ${plain.body.length} B`);
  t.log(`client: ${plain.body.length} B, gzip ${gz.body.length} B, brotli ${br.body.length} B`);
  for (const r of [plain, br, gz]) t.regex(String(r.headers.vary), /accept-encoding/i);
  const tags = new Set([plain, br, gz].map((r) => r.headers.etag));
  t.is(tags.size, 3, 'one ETag per representation');
  // A 304 for the representation the browser holds.
  const again = await rawGet(`${base}/sse.js`, { 'accept-encoding': 'gzip', 'if-none-match': String(gz.headers.etag) });
  t.is(again.status, 304);
  // A client that names no encoding (curl, a script) gets plain JavaScript.
  const bare = await rawGet(`${base}/sse.js`, {});
  t.is(bare.headers['content-encoding'], undefined);
  t.deepEqual(bare.body, plain.body);
});

test('plugin.clientUrl() is cached for a year; the plain URL and a stale version are revalidated', async (t) => {
  const { base, origin, plugin } = await startPlugin(t);
  const url = await plugin.clientUrl();
  t.regex(url ?? '', /^\/sse\/test\/sse\.js\?v=[\w-]{16,}$/);
  const versioned = await fetch(`${origin}${url}`);
  t.is(versioned.status, 200);
  t.is(versioned.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  t.is(await versioned.text(), await (await fetch(`${base}/sse.js`)).text());
  t.is((await fetch(`${base}/sse.js`)).headers.get('cache-control'), 'no-cache');
  t.is((await fetch(`${base}/sse.js?v=old-build`)).headers.get('cache-control'), 'no-cache');
  const classic = await plugin.clientUrl('classic');
  t.regex(classic ?? '', /^\/sse\/test\/sse\.js\?script-type=classic&v=[\w-]{16,}$/);
  t.notRegex(await (await fetch(`${origin}${classic}`)).text(), /\bexport\s*\{/);
});

// Issue 24: a page that does not share tabs loads sse.js (or the classic script) alone, within
// 10 KB gzipped; tab sharing comes in its own chunk, only for pages that ask for it.
const BUDGET_GZIP = 10 * 1024;

test('the client a page loads without tab sharing is at most 10 KB gzipped (module and classic script)', async (t) => {
  const { base } = await startPlugin(t);
  for (const path of ['/sse.js', '/sse.js?script-type=classic']) {
    const gz = await rawGet(`${base}${path}`, { 'accept-encoding': 'gzip' });
    const br = await rawGet(`${base}${path}`, { 'accept-encoding': 'br' });
    t.is(gz.headers['content-encoding'], 'gzip');
    t.is(br.headers['content-encoding'], 'br');
    t.log(`${path}: ${gunzipSync(gz.body).length} B, gzip ${gz.body.length} B, brotli ${br.body.length} B`);
    t.true(gz.body.length <= BUDGET_GZIP, `${path}: ${gz.body.length} B gzipped, over the ${BUDGET_GZIP} B budget`);
    t.true(br.body.length <= gz.body.length, 'brotli, which browsers get first, is smaller still');
  }
  const tabs = await rawGet(`${base}/sse-tabs.js`, { 'accept-encoding': 'gzip' });
  t.is(tabs.status, 200);
  t.log(`/sse-tabs.js (tab sharing, loaded on demand): ${gunzipSync(tabs.body).length} B, gzip ${tabs.body.length} B`);
});
