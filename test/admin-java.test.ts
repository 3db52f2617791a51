// What an admin page or client written for the Java library reads from our endpoints: its
// field names in the admin JSON, its `cluster` / `timeout` parameters and page size, the
// `mapTo*VO` options, and the fields of its 200-with-body answers.
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { MemoryBus, ssePlugin, type ConnectionInfo, type ConnectionView, type StoredMessageView } from '../lib/index.js';
import { getJson, postJson, startPlugin, tokenUser, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';
import { assertError, request } from './helpers/reply.js';

const admin = 'access-token=admin';

async function list(
  t: ExecutionContext,
  url: string,
): Promise<{ pageNum: number; pageSize: number; total: number; list: any[]; partial?: boolean; timeout?: boolean }> {
  const reply = await getJson(url);
  t.is(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.data;
}

const sha12 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);

test('connections.json carries the Java field names with the same values as ours', async (t) => {
  const { base } = await startPlugin(t);
  const query = [
    'access-token=7@3',
    'clientId=c-1',
    'clientVersion=1.2.22',
    'channel=room',
    'clientInstanceId=inst-1',
    'clientInstanceTime=1700000000123',
    'clientImportModuleTime=1700000000001',
    'usedJSHeapSize=1000',
    'totalJSHeapSize=2000',
    'jsHeapSizeLimit=3000',
    'team=blue',
    'locationHref=' + encodeURIComponent('https://app.example/page?token=x#y'),
  ].join('&');
  const stream = await RawStream.open(t, `${base}/connect?${query}`);
  await postJson(`${base}/connect/message/ping.do?access-token=7@3&connectionId=${stream.connectionId}`, {});
  await postJson(`${base}/connect/message/ping.do?access-token=7@3&connectionId=${stream.connectionId}`, {});
  const form = new FormData();
  form.append('f', new Blob(['x']), 'x.txt');
  await request(`${base}/connect/upload/u.do?access-token=7@3&connectionId=${stream.connectionId}`, { method: 'POST', body: form });

  const c: ConnectionView = (await list(t, `${base}/connect/connections.json?${admin}`)).list[0];
  t.is(c.createTime, c.createdAt);
  t.is(c.expireTime, c.expiresAt);
  t.is(c.timeout, c.expiresAt - c.createdAt);
  t.true(c.timeout > 0);
  t.is(c.messageCount, c.eventsWritten);
  t.is(c.requestMessageCount, 2);
  t.is(c.requests, 2);
  t.is(c.requestUploadCount, 1);
  t.is(c.lastRequestTime, c.lastRequestAt!);
  t.true(typeof c.lastRequestTime === 'number');
  t.is(c.accessUserId, '7');
  t.deepEqual(c.accessUser, { id: '7', name: 'User 7', tenantId: '3' });
  t.deepEqual(c.accessUser, c.user);
  t.is(c.accessUserName, 'User 7');
  t.is(c.requestIp, '127.0.0.1');
  t.is(c.requestIp, c.ip);
  t.is(c.requestDomain, c.domain);
  t.deepEqual(c.httpParameters, c.attributes);
  t.is(c.httpParameters.team, 'blue');
  t.is(c.clientInstanceId, 'inst-1');
  t.is(c.clientInstanceTime, 1700000000123);
  t.is(c.clientImportModuleTime, 1700000000001);
  t.is(c.usedJSHeapSize, 1000);
  t.is(c.totalJSHeapSize, 2000);
  t.is(c.jsHeapSizeLimit, 3000);
  // Same names in both libraries.
  t.is(c.id, stream.connectionId);
  t.is(c.clientId, 'c-1');
  t.is(c.clientVersion, '1.2.22');
  t.is(c.channel, 'room');
  t.is(c.tenantId, '3');
  t.is(c.locationHref, 'https://app.example/page');

  // A connection without those parameters shows them as null, as the Java DTO did.
  const bare = await RawStream.open(t, `${base}/connect?access-token=8`);
  const b: ConnectionView = (await list(t, `${base}/connect/connections.json?${admin}&id=${bare.connectionId}`)).list[0];
  t.is(b.lastRequestTime, null);
  t.is(b.clientInstanceId, null);
  t.is(b.usedJSHeapSize, null);
  t.is(b.requestMessageCount, 0);
});

test('messageCount counts the events written to the connection', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  await plugin.hub.sendByUserId(7, 'a', 1);
  await plugin.hub.sendByUserId(7, 'b', 2);
  await stream.next('b');
  const c: ConnectionView = (await list(t, `${base}/connect/connections.json?${admin}`)).list[0];
  t.is(c.messageCount, c.eventsWritten);
  t.true(c.messageCount >= 2);
});

test('repositoryMessages.json carries the Java field names; tokens only as hashes', async (t) => {
  const { base, plugin } = await startPlugin(t, { qos: { file: ':memory:' } });
  const qos = plugin.hub.qos;
  await qos.sendByUserId([1, 2], 'to-users', { n: 1 }, { listening: true });
  await qos.sendByAccessToken('secret-token', 'to-token', 'plain text');
  await qos.sendByTenantId(5, 'to-tenant', [1, 2]);
  await qos.sendByChannel('room', 'to-channel', 42);
  const page = await list(t, `${base}/connect/repositoryMessages.json?${admin}`);
  t.is(page.pageSize, 100);
  t.is(page.timeout, false);
  const [users, token, tenant, channel] = page.list as StoredMessageView[];
  t.is(users!.eventName, 'to-users');
  t.deepEqual(users!.body, { n: 1 });
  t.is(users!.listenerName, 'to-users');
  t.is(users!.filters, 8 | 16);
  t.deepEqual(users!.userIdList, ['1', '2']);
  t.is(users!.tenantIdList, null);
  t.is(users!.accessTokenList, null);
  t.is(users!.channelList, null);
  t.is(token!.body, 'plain text');
  t.is(token!.listenerName, null);
  t.is(token!.filters, 4);
  t.deepEqual(token!.accessTokenList, [sha12('secret-token')]);
  t.deepEqual(tenant!.tenantIdList, ['5']);
  t.deepEqual(tenant!.body, [1, 2]);
  t.is(tenant!.filters, 2);
  t.deepEqual(channel!.channelList, ['room']);
  t.is(channel!.body, 42);
  t.is(channel!.filters, 32);
  t.false(JSON.stringify(page).includes('secret-token'));
});

test('mapToConnectionVO and mapToMessageVO decide what the listings show', async (t) => {
  const seen: ConnectionInfo[] = [];
  const { base, plugin } = await startPlugin(t, {
    qos: { file: ':memory:' },
    mapToConnectionVO: (connection, view) => {
      seen.push(connection);
      return { id: view.id, createTime: view.createTime, team: connection.attributes.team };
    },
    mapToMessageVO: (entry, view) => ({ id: view.id, eventName: view.eventName, to: entry.targets.map((x) => x.key) }),
  });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7&team=red`);
  const connections = await list(t, `${base}/connect/connections.json?${admin}`);
  t.deepEqual(Object.keys(connections.list[0]).sort(), ['createTime', 'id', 'team']);
  t.is(connections.list[0].id, stream.connectionId);
  t.is(connections.list[0].team, 'red');
  // The function gets the whole snapshot (the app's user object), the listing only what it returns.
  t.is(seen[0]!.user.secret, 'do-not-leak');

  const sent = await plugin.hub.qos.sendByAccessToken('tok-1', 'e', 1);
  const messages = await list(t, `${base}/connect/repositoryMessages.json?${admin}`);
  t.deepEqual(messages.list, [{ id: sent.messageId, eventName: 'e', to: ['tok-1'] }]);
});

test('mapToConnectionVO and mapToMessageVO must be functions', (t) => {
  for (const key of ['mapToConnectionVO', 'mapToMessageVO']) {
    t.throws(() => ssePlugin('/x', { authenticate: tokenUser, [key]: 'view' }), { instanceOf: TypeError, message: new RegExp(key) });
  }
});

test("admin listings default to the Java library's page size, 100", async (t) => {
  const { base } = await startPlugin(t);
  for (let i = 0; i < 25; i++) await RawStream.open(t, `${base}/connect?access-token=${i}`);
  for (const endpoint of ['users.json', 'connections.json']) {
    const page = await list(t, `${base}/connect/${endpoint}?${admin}`);
    t.is(page.pageSize, 100);
    t.is(page.total, 25);
    t.is(page.list.length, 25);
    t.is(page.timeout, false);
  }
});

/** Two nodes of one hub over an in-memory bus; peers wait 200 ms for each other by default. */
async function twoNodes(t: ExecutionContext): Promise<{ bus: MemoryBus; a: StartedPlugin; b: StartedPlugin }> {
  const bus = new MemoryBus();
  const node = async (id: string) => {
    const started = await startPlugin(t, { cluster: { transport: bus.transport(id), timeoutMs: 200 } });
    await started.plugin.hub.ready();
    return started;
  };
  return { bus, a: await node('a'), b: await node('b') };
}

test('cluster=false lists this node only and asks no peer', async (t) => {
  const { bus, a, b } = await twoNodes(t);
  await RawStream.open(t, `${a.base}/connect?access-token=1`);
  await RawStream.open(t, `${b.base}/connect?access-token=2`);
  let queries = 0;
  bus.onRequest = (_from, _to, req) => {
    if (req.type === 'query') queries++;
  };
  for (const endpoint of ['users.json', 'connections.json']) {
    const whole = await list(t, `${a.base}/connect/${endpoint}?${admin}`);
    t.is(whole.total, 2);
    for (const cluster of ['true', 'TRUE', '1', 'on']) t.is((await list(t, `${a.base}/connect/${endpoint}?${admin}&cluster=${cluster}`)).total, 2);
    const asked = queries;
    for (const cluster of ['false', 'False', '0', 'no', 'off']) {
      const local = await list(t, `${a.base}/connect/${endpoint}?${admin}&cluster=${cluster}`);
      t.is(local.total, 1, `${endpoint} cluster=${cluster}`);
      t.is(local.partial, false);
    }
    t.is(queries, asked, 'cluster=false sends no query to a peer');
  }
  const local = await list(t, `${a.base}/connect/connections.json?${admin}&cluster=false`);
  t.is(local.list[0].accessUserId, '1');
});

test('timeout is the longest wait for a peer: a slow peer is partial within the default, complete within a longer timeout', async (t) => {
  const { bus, a, b } = await twoNodes(t);
  await RawStream.open(t, `${a.base}/connect?access-token=1`);
  await RawStream.open(t, `${b.base}/connect?access-token=2`);
  bus.latencyMs = 400;
  for (const endpoint of ['users.json', 'connections.json']) {
    const late = await list(t, `${a.base}/connect/${endpoint}?${admin}`);
    t.is(late.total, 1);
    t.true(late.partial);
    t.true(late.timeout, 'the Java name of partial');
    const short = await list(t, `${a.base}/connect/${endpoint}?${admin}&timeout=50`);
    t.true(short.timeout);
    const patient = await list(t, `${a.base}/connect/${endpoint}?${admin}&timeout=3000`);
    t.is(patient.total, 2);
    t.false(patient.partial);
    t.false(patient.timeout);
  }
});

test('cluster and timeout: bad values are 400; a huge timeout is bounded', async (t) => {
  const { base } = await startPlugin(t, { qos: { file: ':memory:' } });
  await RawStream.open(t, `${base}/connect?access-token=7`);
  for (const endpoint of ['users.json', 'connections.json', 'repositoryMessages.json']) {
    for (const query of ['cluster=maybe', 'timeout=0', 'timeout=-1', 'timeout=1.5', 'timeout=abc', 'timeout=9999999999']) {
      assertError(t, await request(`${base}/connect/${endpoint}?${admin}&${query}`), 400, 'ERR_SSE_BAD_REQUEST');
    }
    t.is((await getJson(`${base}/connect/${endpoint}?${admin}&cluster=false&timeout=999999999`)).status, 200);
  }
});

test('Java 200-with-body fields: listener changes on an unknown connection carry error and listener: null', async (t) => {
  const { base } = await startPlugin(t);
  await RawStream.open(t, `${base}/connect?access-token=7`);
  for (const kind of ['addListener', 'removeListener']) {
    const unknown = await request(`${base}/connect/${kind}.do?access-token=7`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ connectionId: 'gone', listener: ['bell'] }),
    });
    assertError(t, unknown, 404, 'ERR_SSE_UNKNOWN_CONNECTION');
    t.is(unknown.body.data.listener, null);
    t.is(typeof unknown.body.data.error, 'string');
    t.is(unknown.body.error, unknown.body.message);
    t.is(unknown.body.data.error, unknown.body.message);

    const invalid = await request(`${base}/connect/${kind}.do?access-token=7`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ listener: ['bell'] }),
    });
    assertError(t, invalid, 400, 'ERR_SSE_BAD_REQUEST');
    t.is(invalid.body.data.listener, null);
  }
});

test('Java 200-with-body fields: listener changes answer listener, disconnect.do answers count', async (t) => {
  const { base } = await startPlugin(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const added = await postJson(`${base}/connect/addListener.do?access-token=7`, { connectionId: stream.connectionId, listener: ['bell'] });
  t.deepEqual(added.body.data, { listener: ['bell'] });
  const removed = await postJson(`${base}/connect/removeListener.do?access-token=7`, { connectionId: stream.connectionId, listener: ['bell'] });
  t.deepEqual(removed.body.data, { listener: [] });

  const beacon = (id?: string) =>
    request(`${base}/connect/disconnect.do`, {
      method: 'POST',
      body: new URLSearchParams(id === undefined ? {} : { connectionId: id, reason: 'close' }),
    });
  const left = await beacon(stream.connectionId);
  t.is(left.status, 200);
  t.is(left.body.data.count, 1);
  const again = await beacon(stream.connectionId);
  assertError(t, again, 404, 'ERR_SSE_UNKNOWN_CONNECTION');
  t.is(again.body.data.count, 0);
  t.is(typeof again.body.data.error, 'string');
  const missing = await beacon();
  assertError(t, missing, 400, 'ERR_SSE_BAD_REQUEST');
  t.is(missing.body.data.count, 0);
});

test('every error answer carries error, at the top and in data; other routes add no Java fields', async (t) => {
  const { base } = await startPlugin(t);
  const message = await request(`${base}/connect/message/x.do?access-token=7&connectionId=gone`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  assertError(t, message, 404, 'ERR_SSE_UNKNOWN_CONNECTION');
  t.deepEqual(message.body.data, { error: message.body.message });
  t.is(message.body.error, message.body.message);
  const refused = await request(`${base}/connect/users.json?access-token=7`);
  assertError(t, refused, 403, 'ERR_SSE_FORBIDDEN');
  t.deepEqual(refused.body.data, { error: 'Admin rights required' });
  t.is(refused.body.error, 'Admin rights required');
  const unrouted = await request(`${base}/connect/nothing.json`);
  assertError(t, unrouted, 404, 'ERR_SSE_NOT_FOUND');
  t.is(unrouted.body.error, unrouted.body.message);
});
