import test from 'ava';
import Koa from 'koa';
import net from 'node:net';
import { once } from 'node:events';
import { EventSource } from 'eventsource';
import { ssePlugin, type CloseReason, type Connection } from '../lib/index.js';
import { listen, startPlugin, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

test('stream headers and connect-finish come first', async (t) => {
  const { base } = await startPlugin(t, { reconnectTimeMs: 1234, heartbeatMs: 7000 });
  const s = await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is(s.status, 200);
  t.is(s.headers!.get('content-type'), 'text/event-stream; charset=utf-8');
  t.is(s.headers!.get('cache-control'), 'no-cache, no-transform');
  t.is(s.headers!.get('x-accel-buffering'), 'no');
  t.is(s.headers!.get('content-encoding'), null);
  t.is(s.events[0]!.event, 'connect-finish');
  const finish = JSON.parse(s.events[0]!.data);
  t.is(finish.reconnectTime, 1234);
  t.is(finish.heartbeatMs, 7000);
  t.is(finish.name, 'test');
  t.is(finish.enableCluster, false);
  t.is(typeof finish.version, 'string');
  // >= 128 random bits, URL-safe.
  t.regex(finish.connectionId, /^[\w-]{22,}$/);
});

test('a plain EventSource client receives events', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const es = new EventSource(`${base}/connect?access-token=42`);
  t.teardown(() => es.close());
  const finish = await new Promise<MessageEvent>((resolve) => es.addEventListener('connect-finish', resolve, { once: true }));
  t.truthy(JSON.parse(finish.data).connectionId);
  const got = new Promise<MessageEvent>((resolve) => es.addEventListener('bell', resolve, { once: true }));
  t.is(await plugin.hub.sendByUserId(42, 'bell', { count: 3 }), 1);
  t.deepEqual(JSON.parse((await got).data), { count: 3 });
});

test('POST connect takes its parameters from a JSON body', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const s = await RawStream.open(t, `${base}/connect?access-token=3`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel: 'c1', listeners: ['a', 'b'], clientId: 'tab-1', screen: '1920x1080', custom: 'x' }),
  });
  const info = await plugin.hub.getConnectionById(s.connectionId);
  t.is(info?.channel, 'c1');
  t.deepEqual(info?.listeners, ['a', 'b']);
  t.is(info?.clientId, 'tab-1');
  t.is(info?.screen, '1920x1080');
  t.is(info?.attributes.custom, 'x');
});

test('queries describe who is online', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const hub = plugin.hub;
  await RawStream.open(t, `${base}/connect?access-token=1@10&channel=a&clientId=c1`);
  await RawStream.open(t, `${base}/connect?access-token=1@10&channel=b`);
  const two = await RawStream.open(t, `${base}/connect?access-token=2@20`);
  await RawStream.open(t, `${base}/connect?access-token=anon`);
  t.true(await hub.isOnline(1));
  t.false(await hub.isOnline(3));
  t.is((await hub.getUser('2'))?.name, 'User 2');
  t.is(await hub.getUser(3), undefined);
  t.deepEqual((await hub.getUserIds()).sort(), ['1', '2']);
  t.deepEqual((await hub.getUsers()).map((u) => u.id).sort(), ['1', '2']);
  t.deepEqual((await hub.getTenantIds()).sort(), ['10', '20']);
  t.deepEqual((await hub.getChannels()).sort(), ['a', 'b']);
  t.deepEqual((await hub.getAccessTokens()).sort(), ['1@10', '2@20', 'anon']);
  t.is(await hub.getUserCount(), 2, 'anonymous connections are not users');
  t.is(await hub.getAccessTokenCount(), 3);
  t.is(await hub.getConnectionCount(), 4);
  t.is((await hub.getConnections({ userId: 1 })).length, 2);
  t.is((await hub.getConnections({ userId: 1, channel: 'a' })).length, 1);
  t.is((await hub.getConnections({ clientId: 'c1' })).length, 1);
  t.is((await hub.getConnections({ tenantId: 20 })).length, 1);
  t.is((await hub.getConnectionById(two.connectionId))?.userId, '2');
  t.is(await hub.getConnectionById('nope'), undefined);
  const info = (await hub.getConnections({ userId: 2 }))[0]!;
  t.is(info.ip, '127.0.0.1');
  t.is(info.domain, '127.0.0.1');
  t.regex(info.accessTokenHash!, /^[0-9a-f]{12}$/);
  t.false(JSON.stringify(info.attributes).includes('2@20'), 'the access-token parameter is not kept as an attribute');
});

test('behind a proxy (app.proxy) the domain and address come from X-Forwarded-*, and are still known after the client left', async (t) => {
  const { base, plugin } = await startPlugin(t, { clientIdMaxConnections: 1 }, (app) => {
    app.proxy = true;
  });
  const gone = new Promise<Connection>((resolve) => plugin.hub.on('disconnect', (conn: Connection) => resolve(conn)));
  const headers = { 'x-forwarded-host': 'shop.example:8443', 'x-forwarded-for': '203.0.113.9, 10.0.0.1' };
  const s = await RawStream.open(t, `${base}/connect?access-token=4`, { headers });
  void s.close();
  // The domain is worked out when first asked: here only after the socket closed.
  const conn = await gone;
  t.deepEqual(JSON.parse(JSON.stringify(conn.request)), { ip: '203.0.113.9', domain: 'shop.example', userAgent: conn.request.userAgent });
  t.is(conn.toInfo().domain, 'shop.example');
  t.is(conn.toInfo().ip, '203.0.113.9');
  // The clientId cap is per site: a tab of the same browser on another forwarded host is not evicted.
  const a = await RawStream.open(t, `${base}/connect?access-token=4&clientId=b1`, { headers });
  const b = await RawStream.open(t, `${base}/connect?access-token=4&clientId=b1`, { headers: { ...headers, 'x-forwarded-host': 'other.example' } });
  t.is(await plugin.hub.getConnectionCount(), 2);
  const c = await RawStream.open(t, `${base}/connect?access-token=4&clientId=b1`, { headers });
  await a.waitEnd();
  t.false(b.ended);
  t.false(c.ended);
});

test('without app.proxy the peer address is still known to a disconnect listener after the client reset the connection', async (t) => {
  const { origin, plugin } = await startPlugin(t);
  // Read only when asked (a system call per stream otherwise), but at once for such a listener.
  const gone = new Promise<Connection>((resolve) => plugin.hub.on('disconnect', (conn: Connection) => resolve(conn)));
  const socket = net.connect(Number(new URL(origin).port), '127.0.0.1');
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  socket.write('GET /sse/test/connect?access-token=8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await once(socket, 'data');
  socket.resetAndDestroy();
  const conn = await gone;
  t.is(conn.request.ip, '127.0.0.1');
  t.is(conn.toInfo().ip, '127.0.0.1');
});

test('without app.proxy X-Forwarded-Host and X-Forwarded-For are ignored; an app that sets ctx.request.ip is kept', async (t) => {
  const { base, plugin } = await startPlugin(t, {}, (app) => {
    app.middleware.unshift(async (ctx, next) => {
      if (ctx.query['access-token'] === '6') ctx.request.ip = '198.51.100.7';
      await next();
    });
  });
  const headers = { 'x-forwarded-host': 'shop.example', 'x-forwarded-for': '203.0.113.9' };
  const five = await RawStream.open(t, `${base}/connect?access-token=5`, { headers });
  const six = await RawStream.open(t, `${base}/connect?access-token=6`, { headers });
  const info5 = await plugin.hub.getConnectionById(five.connectionId);
  t.is(info5?.domain, '127.0.0.1');
  t.is(info5?.ip, '127.0.0.1');
  t.is((await plugin.hub.getConnectionById(six.connectionId))?.ip, '198.51.100.7');
});

test('connect and disconnect events; disconnect fires after the connection left every index', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const hub = plugin.hub;
  const seen: string[] = [];
  const left = new Promise<{ online: boolean; found: boolean; reason: CloseReason }>((resolve) => {
    hub.on('disconnect', (conn: Connection, reason) => {
      void (async () => {
        resolve({ online: await hub.isOnline(conn.userId!), found: (await hub.getConnectionById(conn.id)) !== undefined, reason });
      })();
    });
  });
  hub.on('connect', (conn) => seen.push(`connect ${conn.userId}`));
  const s = await RawStream.open(t, `${base}/connect?access-token=8`);
  t.deepEqual(seen, ['connect 8']);
  await s.close();
  const result = await left;
  t.deepEqual(result, { online: false, found: false, reason: 'client' });
  t.is(await hub.getConnectionCount(), 0);
});

test('disconnectBy* kick with connect-close and reconnect false by default', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const hub = plugin.hub;
  const a = await RawStream.open(t, `${base}/connect?access-token=1`);
  const b = await RawStream.open(t, `${base}/connect?access-token=tok-b&reconnectOnClose=1`);
  const c = await RawStream.open(t, `${base}/connect?access-token=3`);
  const d = await RawStream.open(t, `${base}/connect?access-token=4`);
  t.is(await hub.disconnectByUserId(1), 1);
  t.is(await hub.disconnectByAccessToken('tok-b', { reconnect: true }), 1);
  t.is(await hub.disconnectByConnectionId(c.connectionId), 1);
  t.is(await hub.disconnectByConnectionIds([d.connectionId, 'unknown']), 1);
  t.is(await hub.disconnectByUserId(1), 0);
  for (const s of [a, b, c, d]) await s.waitEnd();
  t.deepEqual(JSON.parse((await a.next('connect-close')).data), { connectionId: a.connectionId, reason: 'kick', reconnect: false });
  t.is(JSON.parse((await b.next('connect-close')).data).reconnect, true);
  t.is(await hub.getConnectionCount(), 0);
});

test('setDuration pushes sse-set-duration, and waits for an offline user to connect', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const hub = plugin.hub;
  const a = await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is(await hub.setDurationByUserId(1, 120), 1);
  t.deepEqual(JSON.parse((await a.next('sse-set-duration')).data), { duration: 120 });
  t.is(await hub.setDurationByConnectionId(a.connectionId, 130), 1);
  t.is((await hub.getConnectionById(a.connectionId))?.sessionDuration, 130);
  t.is(await hub.setDurationByUserId(2, 300), 0);
  t.is(await hub.setDurationByAccessToken('tok', 400), 0);
  const b = await RawStream.open(t, `${base}/connect?access-token=2`);
  t.deepEqual(JSON.parse((await b.next('sse-set-duration')).data), { duration: 300 });
  const c = await RawStream.open(t, `${base}/connect?access-token=tok`);
  t.deepEqual(JSON.parse((await c.next('sse-set-duration')).data), { duration: 400 });
  // Delivered once: the next connection of user 2 gets nothing.
  const b2 = await RawStream.open(t, `${base}/connect?access-token=2`);
  await hub.sendByConnectionId(b2.connectionId, 'end', 1);
  await b2.next('end');
  t.is(b2.named('sse-set-duration').length, 0);
  await t.throwsAsync(() => hub.setDurationByUserId(1, -1), { instanceOf: TypeError });
});

test('the oldest stream of a browser (clientId) beyond the cap is evicted', async (t) => {
  const { base, plugin } = await startPlugin(t, { clientIdMaxConnections: 2 });
  const url = `${base}/connect?access-token=1@5&clientId=browser-1`;
  const first = await RawStream.open(t, url);
  const second = await RawStream.open(t, url);
  const other = await RawStream.open(t, `${base}/connect?access-token=1@5&clientId=browser-2`);
  const third = await RawStream.open(t, url);
  await first.waitEnd();
  t.deepEqual(JSON.parse((await first.next('connect-close')).data), { connectionId: first.connectionId, reason: 'evicted', reconnect: false });
  t.false(second.ended);
  t.false(third.ended);
  t.false(other.ended);
  t.is(await plugin.hub.getConnectionCount(), 3);
});

test('per-user and global caps answer 429 before any stream byte', async (t) => {
  const { base } = await startPlugin(t, { maxConnectionsPerUser: 1, maxConnections: 2 });
  await RawStream.open(t, `${base}/connect?access-token=1`);
  const again = await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is(again.status, 429);
  t.is(JSON.parse(again.body).code, 'ERR_SSE_TOO_MANY_CONNECTIONS');
  await RawStream.open(t, `${base}/connect?access-token=2`);
  const third = await RawStream.open(t, `${base}/connect?access-token=3`);
  t.is(third.status, 429);
});

test('heartbeat comments flow from one hub timer', async (t) => {
  const { base } = await startPlugin(t, { heartbeatMs: 50 });
  const a = await RawStream.open(t, `${base}/connect?access-token=1`);
  const b = await RawStream.open(t, `${base}/connect?access-token=2`);
  await a.until(() => a.comments >= 3, 'three heartbeats');
  await b.until(() => b.comments >= 3, 'three heartbeats');
  t.pass();
});

test('the server clamps the stream lifetime and closes with expired + reconnect', async (t) => {
  const { base, plugin } = await startPlugin(t, { heartbeatMs: 50, maxLifetimeMs: 300, lifetimeJitter: 0 });
  const closed = new Promise<CloseReason>((resolve) => plugin.hub.once('disconnect', (_c, reason) => resolve(reason)));
  // The client asks for an hour: the server's maximum wins.
  const s = await RawStream.open(t, `${base}/connect?access-token=1&keepaliveTime=3600000&reconnectOnClose=1`);
  const finish = JSON.parse(s.events[0]!.data);
  t.true(finish.expiresAt - finish.serverTime <= 300);
  await s.waitEnd();
  t.deepEqual(JSON.parse((await s.next('connect-close')).data), { connectionId: s.connectionId, reason: 'expired', reconnect: true });
  t.is(await closed, 'expired');
});

test('a reader that stops reading is closed as slow; memory stays bounded', async (t) => {
  const limit = 64 * 1024;
  const { origin, plugin } = await startPlugin(t, { writeBufferLimit: limit });
  const hub = plugin.hub;
  const socket = net.connect(Number(new URL(origin).port), '127.0.0.1');
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const connected = once(hub, 'connect');
  socket.write('GET /sse/test/connect?access-token=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await connected;
  socket.pause(); // never read again: the kernel buffers fill, then user space
  const disconnected = new Promise<CloseReason>((resolve) => hub.once('disconnect', (_c, reason) => resolve(reason)));
  const chunk = 'x'.repeat(16 * 1024);
  let writes = 0;
  let maxBuffered = 0;
  while ((await hub.getConnectionCount()) > 0 && writes < 5000) {
    await hub.sendAll('big', chunk);
    writes++;
    for (const c of hub.connections()) maxBuffered = Math.max(maxBuffered, c.bufferedAmount);
    if (writes % 20 === 0) await new Promise((r) => setImmediate(r));
  }
  t.is(await disconnected, 'slow');
  t.true(maxBuffered <= limit + chunk.length + 200, `buffered ${maxBuffered}`);
});

test('close() tells every client to reconnect and refuses new streams', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const s = await RawStream.open(t, `${base}/connect?access-token=1&reconnectOnClose=1`);
  await plugin.close();
  await s.waitEnd();
  t.deepEqual(JSON.parse((await s.next('connect-close')).data), { connectionId: s.connectionId, reason: 'shutdown', reconnect: true });
  const after = await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is(after.status, 503);
  t.is(JSON.parse(after.body).code, 'ERR_SSE_CLOSED');
});

test('two systems in one app are isolated; ctx.sse is the primary, ctx.sseHubs by name', async (t) => {
  const app = new Koa();
  const hr = ssePlugin('/sse/hr', { authenticate: tokenUser });
  const hunter = ssePlugin('/sse/hunter', { authenticate: tokenUser, primary: true });
  app.use(hr);
  app.use(hunter);
  app.use(async (ctx) => {
    ctx.body = { primary: ctx.sse.name, names: Object.keys(ctx.sseHubs).sort(), count: await ctx.sseHubs.hr!.sendByUserId(1, 'from-handler', 1) };
  });
  t.teardown(async () => {
    await hr.close();
    await hunter.close();
  });
  const { origin } = await listen(t, app);
  const onHr = await RawStream.open(t, `${origin}/sse/hr/connect?access-token=1`);
  const onHunter = await RawStream.open(t, `${origin}/sse/hunter/connect?access-token=1`);
  t.is(await hr.hub.sendByUserId(1, 'hr-only', 1), 1);
  t.is(await hunter.hub.getConnectionCount(), 1);
  t.is(await hr.hub.getConnectionCount(), 1);
  const res = await (await fetch(`${origin}/other`)).json();
  t.deepEqual(res, { primary: 'hunter', names: ['hr', 'hunter'], count: 1 });
  await onHr.next('hr-only');
  await onHr.next('from-handler');
  await hunter.hub.sendAll('end', 1);
  await onHunter.next('end');
  t.is(onHunter.named('hr-only').length + onHunter.named('from-handler').length, 0);
  t.is(hunter.hub.getLocalConnection(onHr.connectionId), undefined);
});

test('misuse throws a TypeError at once', (t) => {
  t.throws(() => ssePlugin('sse', { authenticate: tokenUser }), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/sse', {} as never), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/sse', { authenticate: tokenUser, heartbeatMs: -1 }), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/sse', { authenticate: tokenUser, onMessage: 'x' as never }), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/sse', { authenticate: tokenUser, lifetimeJitter: 2 }), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/sse', { authenticate: tokenUser, deadStreamTimeoutMs: -1 }), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/sse', { authenticate: tokenUser, deadStreamTimeoutMs: 2 ** 31 }), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/sse', { authenticate: tokenUser, cluster: { secret: 'x'.repeat(32), healthFailures: 0 } }), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/sse', { authenticate: tokenUser, cluster: { redis: 'redis://127.0.0.1:1', healthFailures: 3 } }), {
    instanceOf: TypeError,
  });
});

test('deadStreamTimeoutMs: a heartbeat plus 10 s by default, 0 turns it off', (t) => {
  t.is(ssePlugin('/sse/a', { authenticate: tokenUser }).hub.options.deadStreamTimeoutMs, 25_000);
  t.is(ssePlugin('/sse/b', { authenticate: tokenUser, heartbeatMs: 5000 }).hub.options.deadStreamTimeoutMs, 15_000);
  t.is(ssePlugin('/sse/c', { authenticate: tokenUser, deadStreamTimeoutMs: 0 }).hub.options.deadStreamTimeoutMs, 0);
});

test('two plugins with the same name in one app are refused loudly', async (t) => {
  const app = new Koa();
  app.use(ssePlugin('/a/hr', { authenticate: tokenUser }));
  app.use(ssePlugin('/b/hr', { authenticate: tokenUser }));
  const { origin, errors } = await listen(t, app);
  const res = await fetch(`${origin}/x`);
  t.is(res.status, 500);
  t.regex(String(errors[0]), /named "hr"/);
});

test('lifetimes are spread by the jitter and a too-short keepaliveTime is raised to the minimum', async (t) => {
  const { base } = await startPlugin(t, { maxLifetimeMs: 100_000, minLifetimeMs: 20_000, lifetimeJitter: 0.5 });
  const lifetimes: number[] = [];
  for (let i = 0; i < 8; i++) {
    const s = await RawStream.open(t, `${base}/connect?access-token=${i}`);
    const finish = JSON.parse(s.events[0]!.data);
    lifetimes.push(finish.expiresAt - finish.serverTime);
  }
  for (const ms of lifetimes) t.true(ms > 50_000 - 50 && ms <= 100_000, `lifetime ${ms}`);
  t.true(new Set(lifetimes.map((ms) => Math.round(ms / 1000))).size > 1, `spread: ${lifetimes.join(', ')}`);
  const short = await RawStream.open(t, `${base}/connect?access-token=x&keepaliveTime=1000`);
  const finish = JSON.parse(short.events[0]!.data);
  t.true(finish.expiresAt - finish.serverTime > 10_000 - 50, 'raised to minLifetimeMs (less jitter)');
});

test("keepaliveTime=0: the longest lifetime allowed by default; never expires with keepaliveZero: 'never' (the Java library)", async (t) => {
  const bounded = await startPlugin(t, { maxLifetimeMs: 60_000, lifetimeJitter: 0 });
  const b = await RawStream.open(t, `${bounded.base}/connect?access-token=1&keepaliveTime=0`);
  const finish = JSON.parse(b.events[0]!.data);
  t.is(finish.expiresAt - finish.serverTime, 60_000, 'maxLifetimeMs, not minLifetimeMs');

  const { base, plugin } = await startPlugin(t, { maxLifetimeMs: 60_000, keepaliveZero: 'never' });
  const s = await RawStream.open(t, `${base}/connect?access-token=2&keepaliveTime=0`);
  t.is(JSON.parse(s.events[0]!.data).expiresAt, null);
  t.is(plugin.hub.getLocalConnection(s.connectionId)!.expiresAt, Infinity);
  // A client asking for a lifetime still gets it, clamped as before.
  const asked = await RawStream.open(t, `${base}/connect?access-token=3&keepaliveTime=30000`);
  const askedFinish = JSON.parse(asked.events[0]!.data);
  t.true(askedFinish.expiresAt - askedFinish.serverTime <= 30_000);
  // The admin listing shows it as Java did: timeout 0, no expiry time.
  const res = await fetch(`${base}/connect/connections.json?access-token=admin&id=${s.connectionId}`);
  const [entry] = ((await res.json()) as { data: { list: { timeout: number; expireTime: number | null }[] } }).data.list;
  t.is(entry.timeout, 0);
  t.is(entry.expireTime, null);
});
