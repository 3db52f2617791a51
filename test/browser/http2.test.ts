// HTTP/2 in Chromium: with the plugin on `http2.createSecureServer({allowHTTP1: true})`, the
// event stream and the page's `send` calls travel over one HTTP/2 connection, so the browser's
// six-connections-per-origin limit stops mattering.
import test from 'ava';
import Koa from 'koa';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect as connectHttp2, createSecureServer, type Http2ServerRequest, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { BrowserContext } from 'playwright-core';
import { localhostCertificate } from '../../example/certificate.js';
import { ssePlugin } from '../../lib/index.js';
import { tokenUser } from '../helpers/server.js';
import { browserTest, launchChromium, nextConnect, skipReason, waitFor } from './harness.js';

// The harness's Chromium, but accepting the test's self-signed certificate.
let context: BrowserContext | undefined;
const dirs: string[] = [];
test.before(async () => {
  if (skipReason !== undefined) return;
  const profileDir = await mkdtemp(join(tmpdir(), 'sse-chromium-h2-'));
  dirs.push(profileDir);
  context = await launchChromium(profileDir, { ignoreHTTPSErrors: true });
});
test.after.always(async () => {
  await context?.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const SENDS = 8;

browserTest('HTTP/2: the stream and several sends share one connection', async (t) => {
  // The example's certificate helper: made on first use, then read back from the folder.
  const certDir = await mkdtemp(join(tmpdir(), 'sse-h2-cert-'));
  t.teardown(() => rm(certDir, { recursive: true, force: true }));
  const made = await localhostCertificate(certDir);
  const again = await localhostCertificate(certDir);
  t.true(made.created);
  t.false(again.created);
  t.is(again.cert, made.cert);

  const app = new Koa();
  const errors: unknown[] = [];
  app.silent = true;
  app.on('error', (err: unknown) => errors.push(err));
  /** Every request the server saw: path, HTTP version and the HTTP/2 session it came on. */
  const requests: { path: string; httpVersion: string; session: Http2Session | undefined }[] = [];
  app.use(async (ctx, next) => {
    const req = ctx.req as unknown as Http2ServerRequest;
    requests.push({ path: ctx.path, httpVersion: req.httpVersion, session: req.stream?.session });
    await next();
  });
  const received: unknown[] = [];
  const plugin = ssePlugin('/sse/test', {
    authenticate: tokenUser,
    onMessage: (path, _ctx, connection, body) => {
      received.push(body);
      return { path, body, connectionId: connection.id };
    },
  });
  app.use(plugin);
  app.use(async (ctx) => {
    if (ctx.method !== 'GET' || ctx.path !== '/') return;
    ctx.type = 'html';
    ctx.body = '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>h2</title></head><body></body></html>';
  });

  const handle = app.callback();
  const server = createSecureServer({ allowHTTP1: true, key: made.key, cert: made.cert }, (req, res) => void handle(req, res));
  const sessions = new Set<Http2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  let http1 = 0;
  server.on('request', (req: Http2ServerRequest) => {
    if (req.httpVersion !== '2.0') http1++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    await plugin.close();
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  if (context === undefined) throw new Error('Chromium failed to start');
  const page = await context.newPage();
  t.teardown(() => page.close());
  // tsx compiles the tests with esbuild's keepNames: functions passed to page.evaluate may call __name.
  await page.addInitScript('window.__name = window.__name || ((fn) => fn);');
  // What Chromium itself says about each response: protocol and connection.
  const cdp = await context.newCDPSession(page);
  const responses: { url: string; protocol: string | undefined; connectionId: number }[] = [];
  cdp.on('Network.responseReceived', ({ response }) => {
    responses.push({ url: response.url, protocol: response.protocol, connectionId: response.connectionId });
  });
  await cdp.send('Network.enable');

  await page.goto(`${origin}/`);
  const connecting = nextConnect(plugin.hub, (c) => c.userId === '7');
  await page.evaluate(async () => {
    const url = '/sse/test/sse.js';
    const { sseEventListener } = (await import(url)) as typeof import('../../browser/index.js');
    window.__events = [];
    window.sse = await sseEventListener(
      '/sse/test',
      {
        bell: (e: MessageEvent<string>) => window.__events.push({ type: e.type, data: e.data, lastEventId: e.lastEventId }),
      },
      { 'access-token': '7' },
      { clientId: 'h2-page' },
    );
  });
  const connection = await connecting;

  // Several sends at once: over HTTP/1.1 the stream would hold one of the six sockets.
  const answers = await page.evaluate((count) => Promise.all(Array.from({ length: count }, (_, n) => window.sse.sendJson('echo', { n }))), SENDS);
  t.deepEqual(
    answers.map((a) => (a as { data: { body: unknown } }).data.body),
    Array.from({ length: SENDS }, (_, n) => ({ n })),
  );
  t.is(received.length, SENDS);

  // The stream works: a push from the server arrives.
  t.is(await plugin.hub.sendByUserId(7, 'bell', { over: 'h2' }), 1);
  await page.waitForFunction(() => window.__events.some((e) => e.type === 'bell'));
  t.deepEqual(JSON.parse(await page.evaluate(() => window.__events.find((e) => e.type === 'bell')!.data)), { over: 'h2' });

  // Server side: every request was HTTP/2, on one session.
  const streamRequests = requests.filter((r) => r.path === '/sse/test/connect');
  const sendRequests = requests.filter((r) => r.path === '/sse/test/connect/message/echo.do');
  t.is(streamRequests.length, 1);
  t.is(sendRequests.length, SENDS);
  t.deepEqual([...new Set(requests.map((r) => r.httpVersion))], ['2.0']);
  t.is(http1, 0);
  const used = new Set(requests.map((r) => r.session));
  t.is(used.size, 1, 'one HTTP/2 session carried every request');
  t.false(used.has(undefined));
  t.is(sessions.size, 1, 'Chromium opened one HTTP/2 connection');
  t.false(connection.closed);

  // Browser side: Chromium reports h2 and one connection for the page, the stream and the sends.
  await waitFor(() => responses.filter((r) => r.url.includes('/connect/message/echo.do')).length === SENDS, 'the responses of the sends in CDP');
  const ours = responses.filter((r) => r.url.startsWith(`${origin}/`));
  t.is(ours.length, requests.length, 'Chromium saw the responses of every request the server had');
  t.true(
    ours.some((r) => new URL(r.url).pathname === '/sse/test/connect'),
    'the stream is seen',
  );
  t.deepEqual([...new Set(ours.map((r) => r.protocol))], ['h2']);
  t.is(new Set(ours.map((r) => r.connectionId)).size, 1);
  // And for the finished ones, the page's own view (Resource Timing).
  const protocols = await page.evaluate(() =>
    performance.getEntriesByType('resource').map((e) => [(e as PerformanceResourceTiming).name, (e as PerformanceResourceTiming).nextHopProtocol]),
  );
  t.is(protocols.filter(([name]) => name!.includes('/connect/message/echo.do')).length, SENDS);
  t.deepEqual([...new Set(protocols.map(([, protocol]) => protocol))], ['h2']);

  await page.evaluate(() => window.sse.close());
  t.deepEqual(errors, []);
});

// No browser needed: node's HTTP/2 client against `HTTP2=1 npm start`.
test('the example in HTTP2 mode: https URL, certificate kept in the data folder, stream and send over HTTP/2, clean SIGTERM', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sse-example-h2-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const start = async (): Promise<{ origin: string; lines: string[]; stop: () => Promise<number | null> }> => {
    const child = spawn(process.execPath, ['--import=tsx', 'example/server.ts'], {
      env: { ...process.env, HTTP2: '1', PORT: '0', HOST: '127.0.0.1', SSE_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit').then(([code]) => code as number | null);
    t.teardown(() => void child.kill('SIGKILL'));
    const lines: string[] = [];
    const origin = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the example did not start: ${lines.join(' | ')}`)), 20_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        lines.push(line);
        const m = /listening on (https:\/\/127\.0\.0\.1:\d+)\//.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    return { origin, lines, stop: () => (child.kill('SIGTERM'), exited) };
  };

  const first = await start();
  t.regex(first.lines.join('\n'), /made a self-signed certificate for localhost and 127\.0\.0\.1: .*localhost-cert\.pem/);
  t.is((await stat(join(dataDir, 'tls', 'localhost-key.pem'))).mode & 0o077, 0, 'the key is private');
  const made = await localhostCertificate(dataDir);
  t.false(made.created);

  // The certificate is the one kept in the folder, valid for 127.0.0.1: verify it as a client would.
  const session = connectHttp2(first.origin, { ca: made.cert, servername: 'localhost' });
  t.teardown(() => void session.destroy());
  const stream = session.request({ ':path': '/sse/hr/connect?access-token=7&reconnectOnClose=1', accept: 'text/event-stream' });
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (text += chunk));
  await waitFor(() => text.includes('event: connect-finish'), 'connect-finish over HTTP/2');
  const connectionId = /"connectionId":"([^"]+)"/.exec(text)![1]!;

  const request = session.request({
    ':method': 'POST',
    ':path': `/sse/hr/connect/message/echo.do?access-token=7&connectionId=${connectionId}`,
    'content-type': 'application/json',
  });
  request.end(JSON.stringify({ over: 'h2' }));
  let answer = '';
  request.setEncoding('utf8');
  request.on('data', (chunk: string) => (answer += chunk));
  await once(request, 'end');
  t.like(JSON.parse(answer), { success: true, data: { over: 'h2' } });
  await waitFor(() => text.includes('event: echo'), 'the echo event over the stream');

  // SIGTERM: the stream is told to reconnect before the process ends.
  t.is(await first.stop(), 0);
  t.regex(text, /event: connect-close\n(?:\w+: [^\n]*\n)*?data: \{[^\n]*"reason":"shutdown","reconnect":true/);

  // Second run: the certificate is reused, not made anew.
  const second = await start();
  t.regex(second.lines.join('\n'), /^self-signed certificate for localhost/m);
  t.is(await second.stop(), 0);
});
