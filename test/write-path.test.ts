// The stream's write path: HTTP/1.1 chunks written straight to the socket (one framed Buffer
// per event, corked per tick) must put on the wire exactly what res.write would, and handing
// the response to the hub releases Koa's per-request state without breaking other users of
// on-finished.
import test from 'ava';
import { createRequire } from 'node:module';
import { connect as tcpConnect } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { Connection } from '../lib/index.js';
import { sleep, startPlugin } from './helpers/server.js';

/** Strictly de-chunks an HTTP/1.1 body; throws on any framing error. */
function dechunk(body: Buffer): { text: string; ended: boolean } {
  let at = 0;
  const parts: Buffer[] = [];
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) return { text: Buffer.concat(parts).toString('utf8'), ended: false };
    const line = body.subarray(at, eol).toString('latin1');
    if (!/^[0-9a-f]+$/.test(line)) throw new Error(`bad chunk size line ${JSON.stringify(line)}`);
    const size = parseInt(line, 16);
    if (size === 0) {
      if (body.subarray(eol, eol + 4).toString('latin1') !== '\r\n\r\n') throw new Error('bad last chunk');
      return { text: Buffer.concat(parts).toString('utf8'), ended: true };
    }
    const start = eol + 2;
    if (body.length < start + size + 2) return { text: Buffer.concat(parts).toString('utf8'), ended: false };
    parts.push(body.subarray(start, start + size));
    if (body.subarray(start + size, start + size + 2).toString('latin1') !== '\r\n') throw new Error('chunk not followed by CRLF');
    at = start + size + 2;
  }
}

/** Opens a stream over a plain TCP socket and collects the raw response. */
function rawStream(
  port: number,
  path: string,
): { head: () => string; body: () => { text: string; ended: boolean }; close: () => void; end: () => void; ready: Promise<void> } {
  const sock = tcpConnect({ host: '127.0.0.1', port });
  let raw = Buffer.alloc(0);
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`));
  sock.on('data', (d: Buffer) => {
    raw = Buffer.concat([raw, d]);
    if (raw.includes('connect-finish')) resolveReady();
  });
  sock.on('error', () => undefined);
  const split = (): number => raw.indexOf('\r\n\r\n');
  return {
    ready,
    head: () => raw.subarray(0, split()).toString('latin1'),
    body: () => dechunk(raw.subarray(split() + 4)),
    close: () => sock.destroy(),
    end: () => sock.end(),
  };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

test('chunks written to the socket are well-framed and in order: bursts, targeted, multi-line, close', async (t) => {
  const { server, plugin, errors } = await startPlugin(t);
  const port = (server.address() as { port: number }).port;
  const a = rawStream(port, '/sse/test/connect?access-token=7');
  const b = rawStream(port, '/sse/test/connect?access-token=8');
  t.teardown(() => {
    a.close();
    b.close();
  });
  await Promise.all([a.ready, b.ready]);
  t.regex(a.head(), /Transfer-Encoding: chunked/i);

  const hub = plugin.hub;
  // One tick: a burst of broadcasts and targeted sends, interleaved.
  void hub.sendAll('one', { n: 1 });
  void hub.sendByUserId('7', 'only-7', 'for seven');
  void hub.sendAll('two', 'line 1\nline 2');
  void hub.sendAll('three', { big: 'é'.repeat(5000) });
  await sleep(20);
  // Later ticks, one at a time.
  t.is(await hub.sendAll('four', 4), 2);
  t.is(await hub.sendByUserId('8', 'only-8', ''), 1);
  await hub.disconnectByUserId(['7', '8']);
  await until(() => a.body().ended && b.body().ended);

  // Without connect-finish; each ordinary event's `id:` (the recovery window's) checked, then left out.
  const frames = (text: string): string[] =>
    text
      .split('\n\n')
      .filter(Boolean)
      .slice(1)
      .map((frame) => frame.replace(/^(event: [^\n]+\n)id: [0-9a-z]{10}\.[0-9a-z]+\.[0-9a-z]+\.[0-9a-f]{6}\n/, '$1'));
  const common = ['event: one\ndata: {"n":1}'];
  const after = [`event: two\ndata: line 1\ndata: line 2`, `event: three\ndata: {"big":"${'é'.repeat(5000)}"}`, 'event: four\ndata: 4'];
  const gotA = frames(a.body().text);
  const gotB = frames(b.body().text);
  t.deepEqual(gotA.slice(0, -1), [...common, 'event: only-7\ndata: for seven', ...after]);
  t.deepEqual(gotB.slice(0, -1), [...common, ...after, 'event: only-8\ndata: ']);
  t.regex(gotA.at(-1)!, /^event: connect-close\ndata: \{"connectionId":"[\w-]+","reason":"kick","reconnect":false\}$/);
  t.regex(gotB.at(-1)!, /^event: connect-close\n/);
  t.deepEqual(errors, []);
});

test('a long run of frames in one tick (past the joined-chunk size) arrives whole and in order, each stream its own', async (t) => {
  const { server, plugin, errors } = await startPlugin(t);
  const port = (server.address() as { port: number }).port;
  const a = rawStream(port, '/sse/test/connect?access-token=7');
  const b = rawStream(port, '/sse/test/connect?access-token=8');
  t.teardown(() => {
    a.close();
    b.close();
  });
  await Promise.all([a.ready, b.ready]);
  const hub = plugin.hub;
  // One tick: ~40 KB for everyone, with a targeted send amid it: two different runs, both long.
  const big = (c: string): string => c.repeat(10_000);
  void hub.sendAll('b1', big('a'));
  void hub.sendAll('b2', big('b'));
  void hub.sendByUserId('7', 'only-7', big('c'));
  void hub.sendAll('b3', big('d'));
  void hub.sendAll('b4', big('e'));
  await sleep(20);
  t.is(await hub.sendAll('after', 1), 2);
  await hub.disconnectByUserId(['7', '8']);
  await until(() => a.body().ended && b.body().ended);
  const events = (text: string): string[] =>
    text
      .split('\n\n')
      .filter(Boolean)
      .slice(1, -1)
      .map((frame) => frame.replace(/\nid: [^\n]+/, ''));
  const all = ['event: b1\ndata: ' + big('a'), 'event: b2\ndata: ' + big('b')];
  const rest = ['event: b3\ndata: ' + big('d'), 'event: b4\ndata: ' + big('e'), 'event: after\ndata: 1'];
  t.deepEqual(events(a.body().text), [...all, 'event: only-7\ndata: ' + big('c'), ...rest]);
  t.deepEqual(events(b.body().text), [...all, ...rest]);
  t.deepEqual(errors, []);
});

test('a write from a later tick is not framed with a stale chunk of a reused Buffer', async (t) => {
  const { server, plugin } = await startPlugin(t);
  const port = (server.address() as { port: number }).port;
  const a = rawStream(port, '/sse/test/connect?access-token=7');
  t.teardown(() => a.close());
  await a.ready;
  const conn = [...plugin.hub.connections()][0] as Connection;
  const frame = Buffer.from('event: x\ndata: AAAA\n\n');
  conn.write(frame);
  await sleep(10);
  frame.write('BBBB', frame.indexOf('AAAA'));
  conn.write(frame);
  await until(() => a.body().text.includes('BBBB'));
  t.true(a.body().text.endsWith('event: x\ndata: AAAA\n\nevent: x\ndata: BBBB\n\n'));
});

test('the stream releases Koa: no on-finished listeners left, and a client leaving is not an error', async (t) => {
  let res: ServerResponse | undefined;
  const { base, plugin, errors } = await startPlugin(t, {}, (app) => {
    app.middleware.unshift(async (ctx, next) => {
      res = ctx.res;
      await next();
    });
  });
  const ac = new AbortController();
  const response = await fetch(`${base}/connect?access-token=7`, { signal: ac.signal });
  t.is(response.status, 200);
  await until(() => [...plugin.hub.connections()].length === 1);
  const r = res as ServerResponse & { __onFinished?: unknown };
  t.is(r.__onFinished, null);
  for (const [emitter, event] of [
    [r, 'finish'],
    [r, 'end'],
    [r.socket!, 'close'],
    [r.socket!, 'error'],
  ] as const) {
    t.false(
      emitter.listeners(event).some((fn) => fn.name === 'onevent'),
      `${event} listener left`,
    );
  }
  const gone = new Promise((resolve) => plugin.hub.once('disconnect', resolve));
  ac.abort();
  await gone;
  await sleep(50);
  t.deepEqual(errors, []);
});

test('another middleware waiting on on-finished for the stream is still told when it ends', async (t) => {
  // on-finished is Koa's own dependency: load the copy Koa uses.
  const onFinished = createRequire(createRequire(import.meta.url).resolve('koa'))('on-finished') as (
    res: ServerResponse,
    cb: (err: unknown) => void,
  ) => void;
  let finished = 0;
  const { base, plugin } = await startPlugin(t, {}, (app) => {
    app.middleware.unshift(async (ctx, next) => {
      onFinished(ctx.res, () => finished++);
      await next();
    });
  });
  const ac = new AbortController();
  await fetch(`${base}/connect?access-token=7`, { signal: ac.signal });
  await until(() => [...plugin.hub.connections()].length === 1);
  t.is(finished, 0);
  ac.abort();
  await until(() => finished === 1);
  t.pass();
});

test('a client that half-closes its socket is removed; sends meanwhile neither throw nor report errors', async (t) => {
  const { server, plugin, errors } = await startPlugin(t);
  const port = (server.address() as { port: number }).port;
  const a = rawStream(port, '/sse/test/connect?access-token=7');
  t.teardown(() => a.close());
  await a.ready;
  const gone = new Promise((resolve) => plugin.hub.once('disconnect', resolve));
  const conn = [...plugin.hub.connections()][0] as Connection;
  a.end();
  for (let i = 0; i < 20; i++) {
    await plugin.hub.sendAll('tick', { i });
    await sleep(2);
  }
  await gone;
  t.true(conn.closed);
  t.is(await plugin.hub.sendAll('tick', 'after'), 0);
  t.deepEqual(errors, []);
});

// A runtime channel restored at connect is in connect-finish: text that is not ASCII goes the Buffer way.
for (const channel of ['hr', 'Büro']) {
  test(`the head and connect-finish leave in one socket write, without res.write; headers an app set are in that head (channel ${channel})`, async (t) => {
    let res: ServerResponse | undefined;
    const socketWrites: Buffer[] = [];
    let resWrites = 0;
    const { server } = await startPlugin(t, { authorizeChannel: () => true }, (app) => {
      app.middleware.unshift(async (ctx, next) => {
        res = ctx.res;
        ctx.set('X-App', 'kept');
        const socket = ctx.req.socket;
        const write = socket.write.bind(socket) as (chunk: unknown) => boolean;
        socket.write = ((chunk: unknown) => {
          socketWrites.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), 'latin1'));
          return write(chunk);
        }) as typeof socket.write;
        const resWrite = ctx.res.write.bind(ctx.res) as (chunk: unknown) => boolean;
        ctx.res.write = ((chunk: unknown) => {
          resWrites++;
          return resWrite(chunk);
        }) as typeof ctx.res.write;
        await next();
      });
    });
    const a = rawStream((server.address() as { port: number }).port, `/sse/test/connect?access-token=7&channels=${encodeURIComponent(channel)}`);
    t.teardown(() => a.close());
    await a.ready;
    t.truthy(res);
    t.is(resWrites, 0);
    t.is(socketWrites.length, 1);
    const written = socketWrites[0]!;
    const split = written.indexOf('\r\n\r\n');
    const head = written.subarray(0, split).toString('latin1');
    t.regex(head, /^HTTP\/1\.1 200 OK\r\n/);
    t.regex(head, /\r\nX-App: kept\r\n/);
    t.regex(head, /\r\nTransfer-Encoding: chunked$/);
    const finish = dechunk(written.subarray(split + 4));
    t.regex(finish.text, /^event: connect-finish\nretry: \d+\ndata: \{"connectionId":"[\w-]{24}"/);
    t.deepEqual(JSON.parse(finish.text.split('\ndata: ')[1]!).channels, [channel]);
    t.is(a.head(), head);
  });
}

test('where Node must write the first chunk itself (HTTP/1.0, a corked response), the stream still opens and runs', async (t) => {
  const { server, plugin } = await startPlugin(t, {}, (app) => {
    app.middleware.unshift(async (ctx, next) => {
      if (ctx.query['access-token'] !== 'corked') return next();
      ctx.res.cork();
      await next();
      process.nextTick(() => ctx.res.uncork());
    });
  });
  const port = (server.address() as { port: number }).port;
  // HTTP/1.0: no chunked encoding; the body is the frames as they are, ended by the close.
  const old = tcpConnect({ host: '127.0.0.1', port });
  t.teardown(() => old.destroy());
  let raw = '';
  old.on('data', (d: Buffer) => (raw += d.toString('utf8')));
  old.on('connect', () => old.write('GET /sse/test/connect?access-token=old HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n'));
  const corked = rawStream(port, '/sse/test/connect?access-token=corked');
  t.teardown(() => corked.close());
  await corked.ready;
  await until(() => raw.includes('connect-finish'));
  t.is(await plugin.hub.sendAll('tick', 1), 2);
  await until(() => raw.includes('event: tick') && corked.body().text.includes('event: tick'));
  t.regex(raw, /^HTTP\/1\.1 200 OK\r\n/);
  t.notRegex(raw, /Transfer-Encoding/i);
  t.regex(raw.split('\r\n\r\n')[1]!, /^event: connect-finish\n[^]*\n\nevent: tick\nid: [^\n]+\ndata: 1\n\n$/);
  t.regex(corked.body().text, /^event: connect-finish\n[^]*\n\nevent: tick\nid: [^\n]+\ndata: 1\n\n$/);
});
