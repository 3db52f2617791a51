// Admin endpoints over real HTTP: users.json and connections.json — who may call them,
// paging, filters, and that nothing secret leaks.
import test, { type ExecutionContext } from 'ava';
import type { Context } from 'koa';
import type { SseUser } from '../lib/index.js';
import { getJson, postJson, startPlugin, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';
import { assertError, request, type Reply } from './helpers/reply.js';

const get = (url: string, headers: Record<string, string> = {}): Promise<Reply> => request(url, { headers });

/** The page inside the success envelope. */
function pageOf(t: ExecutionContext, reply: Reply): { pageNum: number; pageSize: number; total: number; list: any[] } {
  t.is(reply.status, 200, reply.text);
  t.is(reply.body.success, true);
  t.is(reply.body.code, 200);
  t.is(reply.body.message, null);
  t.is(reply.body.errorMessage, null);
  return reply.body.data;
}

const ENDPOINTS = ['users.json', 'connections.json'] as const;

test('admin endpoints: 401 without login, 403 for a user, 200 for an admin', async (t) => {
  const { base, errors } = await startPlugin(t);
  await RawStream.open(t, `${base}/connect?access-token=7`);
  for (const endpoint of ENDPOINTS) {
    assertError(t, await get(`${base}/connect/${endpoint}`), 401, 'ERR_SSE_UNAUTHORIZED');
    const forbidden = await get(`${base}/connect/${endpoint}?access-token=7`);
    assertError(t, forbidden, 403, 'ERR_SSE_FORBIDDEN');
    t.false(forbidden.text.includes('User 7'), 'a refused call shows no data');
    assertError(t, await get(`${base}/connect/${endpoint}?access-token=anon`), 403, 'ERR_SSE_FORBIDDEN');
    const page = pageOf(t, await get(`${base}/connect/${endpoint}?access-token=admin`));
    t.is(page.total, 1);
  }
  t.deepEqual(errors, []);
});

test('admin endpoints: a plugin without authorizeAdmin lets nobody in', async (t) => {
  const { base } = await startPlugin(t, { authorizeAdmin: undefined });
  await RawStream.open(t, `${base}/connect?access-token=admin`);
  for (const endpoint of ENDPOINTS) {
    assertError(t, await get(`${base}/connect/${endpoint}?access-token=admin`), 403, 'ERR_SSE_FORBIDDEN');
    assertError(t, await get(`${base}/connect/${endpoint}`), 401, 'ERR_SSE_UNAUTHORIZED');
  }
});

test('admin endpoints: an authorizeAdmin answering a truthy non-boolean does not let anyone in', async (t) => {
  const { base, errors } = await startPlugin(t, { authorizeAdmin: (() => 'yes') as never });
  assertError(t, await get(`${base}/connect/users.json?access-token=admin`), 403, 'ERR_SSE_FORBIDDEN');
  t.deepEqual(errors, []);
});

test('users.json: one entry per online user (anonymous excluded), paged', async (t) => {
  const { base } = await startPlugin(t);
  for (const token of ['1', '2', '3', '3', '4', '5@9', 'anon']) {
    await RawStream.open(t, `${base}/connect?access-token=${token}`);
  }
  const url = `${base}/connect/users.json?access-token=admin`;

  const all = pageOf(t, await get(url));
  t.is(all.pageNum, 1);
  t.is(all.pageSize, 100, "the Java library's default page size");
  t.is(all.total, 5);
  t.deepEqual(all.list.map((u) => u.id).sort(), ['1', '2', '3', '4', '5']);
  t.deepEqual(
    all.list.find((u) => u.id === '5'),
    { id: '5', name: 'User 5', tenantId: '9' },
  );

  const seen: string[] = [];
  for (let pageNum = 1; pageNum <= 3; pageNum++) {
    const page = pageOf(t, await get(`${url}&pageNum=${pageNum}&pageSize=2`));
    t.is(page.pageNum, pageNum);
    t.is(page.pageSize, 2);
    t.is(page.total, 5);
    t.is(page.list.length, pageNum < 3 ? 2 : 1);
    seen.push(...page.list.map((u) => u.id));
  }
  t.deepEqual(seen.sort(), ['1', '2', '3', '4', '5'], 'pages neither repeat nor skip a user');

  const beyond = pageOf(t, await get(`${url}&pageNum=4&pageSize=2`));
  t.deepEqual(beyond, { pageNum: 4, pageSize: 2, total: 5, list: [], partial: false, timeout: false });
  const far = pageOf(t, await get(`${url}&pageNum=999999999&pageSize=1000`));
  t.is(far.total, 5);
  t.deepEqual(far.list, []);
});

test('users.json: name filter is a case-insensitive substring', async (t) => {
  const { base } = await startPlugin(t);
  for (const token of ['1', '2', '10', '12']) await RawStream.open(t, `${base}/connect?access-token=${token}`);
  const url = `${base}/connect/users.json?access-token=admin`;
  const names = async (name: string) =>
    pageOf(t, await get(`${url}&name=${encodeURIComponent(name)}`))
      .list.map((u) => u.name)
      .sort();
  t.deepEqual(await names('USER 1'), ['User 1', 'User 10', 'User 12']);
  t.deepEqual(await names('er 2'), ['User 2']);
  t.deepEqual(await names('user'), ['User 1', 'User 10', 'User 12', 'User 2']);
  t.deepEqual(await names('nobody'), []);
  const filtered = pageOf(t, await get(`${url}&name=user%201&pageSize=2`));
  t.is(filtered.total, 3, 'total counts the filtered users');
  t.is(filtered.list.length, 2);
});

test('connections.json: paged in creation order, filtered by name, clientId and id', async (t) => {
  const { base } = await startPlugin(t);
  const streams: RawStream[] = [];
  for (const [token, clientId] of [
    ['1', 'a'],
    ['2', 'b'],
    ['1', 'b'],
    ['30', 'a'],
    ['anon', 'a'],
  ] as const) {
    streams.push(await RawStream.open(t, `${base}/connect?access-token=${token}&clientId=${clientId}`));
  }
  const ids = streams.map((s) => s.connectionId);
  const url = `${base}/connect/connections.json?access-token=admin`;

  const all = pageOf(t, await get(url));
  t.is(all.total, 5);
  t.deepEqual(
    all.list.map((c) => c.id),
    ids,
  );

  const pages: string[] = [];
  for (let pageNum = 1; pageNum <= 3; pageNum++) {
    const page = pageOf(t, await get(`${url}&pageNum=${pageNum}&pageSize=2`));
    t.is(page.total, 5);
    pages.push(...page.list.map((c) => c.id));
  }
  t.deepEqual(pages, ids, 'pages follow creation order, none repeated or skipped');
  t.deepEqual(pageOf(t, await get(`${url}&pageNum=6&pageSize=1`)).list, []);

  const byClient = pageOf(t, await get(`${url}&clientId=a`));
  t.is(byClient.total, 3);
  t.deepEqual(byClient.list.map((c) => c.id).sort(), [ids[0], ids[3], ids[4]].sort());
  t.true(byClient.list.every((c) => c.clientId === 'a'));

  const byId = pageOf(t, await get(`${url}&id=${ids[2]}`));
  t.is(byId.total, 1);
  t.is(byId.list[0].id, ids[2]);
  t.is(byId.list[0].userId, '1');
  t.is(byId.list[0].clientId, 'b');
  t.deepEqual(pageOf(t, await get(`${url}&id=nope`)).list, []);

  // "user 1" matches User 1 (two connections), not User 2 or User 30; anonymous has no name.
  const byName = pageOf(t, await get(`${url}&name=USER%201`));
  t.deepEqual(byName.list.map((c) => c.id).sort(), [ids[0], ids[2]].sort());
  const combined = pageOf(t, await get(`${url}&name=user&clientId=b`));
  t.deepEqual(combined.list.map((c) => c.id).sort(), [ids[1], ids[2]].sort());
});

test('admin paging and filters: bad values are 400, never 5xx', async (t) => {
  const { base, errors } = await startPlugin(t);
  await RawStream.open(t, `${base}/connect?access-token=7`);
  const bad = [
    'pageNum=0',
    'pageNum=-1',
    'pageNum=abc',
    'pageNum=1.5',
    'pageNum=1e3',
    'pageNum=9999999999',
    'pageSize=0',
    'pageSize=1001',
    'pageSize=-5',
    'pageSize=2.5',
    'pageSize=%20',
    `name=${'x'.repeat(300)}`,
  ];
  const badConnections = [`clientId=${'x'.repeat(300)}`, `id=${'x'.repeat(300)}`];
  for (const endpoint of ENDPOINTS) {
    for (const query of endpoint === 'connections.json' ? [...bad, ...badConnections] : bad) {
      assertError(t, await get(`${base}/connect/${endpoint}?access-token=admin&${query}`), 400, 'ERR_SSE_BAD_REQUEST');
    }
    // Bad paging from a non-admin is still refused first: no hint about the data.
    assertError(t, await get(`${base}/connect/${endpoint}?access-token=7&pageNum=0`), 403, 'ERR_SSE_FORBIDDEN');
    // Limits themselves are fine.
    t.is(pageOf(t, await get(`${base}/connect/${endpoint}?access-token=admin&pageSize=1000&pageNum=1`)).pageSize, 1000);
  }
  t.deepEqual(errors, []);
});

/** Login as in the helpers, but the session token comes from `Authorization: Bearer` when present. */
function bearerUser(ctx: Context): SseUser | null {
  const user = tokenUser(ctx);
  if (user === null) return null;
  const bearer = /^Bearer (.+)$/.exec(ctx.get('authorization'))?.[1];
  return bearer === undefined ? user : { ...user, accessToken: bearer };
}

const RAW_TOKEN = 'tok-RAW-5f3c9d1e8a';
const COOKIE = 'sid=cookie-VALUE-77aa31';

test('admin listings are redacted: no token, no extra user fields, no cookie or Authorization value', async (t) => {
  const { base, plugin } = await startPlugin(t, { authenticate: bearerUser });
  const withHeaders = await RawStream.open(t, `${base}/connect?access-token=7&clientId=c1&team=blue`, {
    headers: { Cookie: COOKIE, Authorization: `Bearer ${RAW_TOKEN}`, 'User-Agent': 'test-agent/1.0' },
  });
  await RawStream.open(t, `${base}/connect?access-token=8`, { headers: { Cookie: 'other=cookie-VALUE-bbb' } });
  // The hub itself has the real user object, secret and all (it is the app's object).
  const conn = plugin.hub.getLocalConnection(withHeaders.connectionId)!;
  t.is(conn.user.accessToken, RAW_TOKEN);
  t.is(conn.user.secret, 'do-not-leak');

  const leaks = [RAW_TOKEN, 'do-not-leak', 'cookie-VALUE', COOKIE, 'Bearer', 'secret'];
  for (const endpoint of ENDPOINTS) {
    const reply = await get(`${base}/connect/${endpoint}?access-token=admin`);
    t.is(reply.status, 200, reply.text);
    for (const leak of leaks) t.false(reply.text.includes(leak), `${endpoint} leaks ${leak}: ${reply.text}`);
    t.false(/accessToken"/.test(reply.text), `${endpoint} has an accessToken field`);
    t.false(/cookie|authorization/i.test(reply.text), `${endpoint} mentions cookies or authorization`);
  }

  const users = pageOf(t, await get(`${base}/connect/users.json?access-token=admin`));
  t.deepEqual(
    users.list.find((u) => u.id === '7'),
    { id: '7', name: 'User 7', tenantId: null },
  );

  const connections = pageOf(t, await get(`${base}/connect/connections.json?access-token=admin&id=${withHeaders.connectionId}`));
  const c = connections.list[0];
  t.deepEqual(c.user, { id: '7', name: 'User 7', tenantId: null });
  t.regex(c.accessTokenHash, /^[0-9a-f]{12}$/);
  t.not(c.accessTokenHash, RAW_TOKEN);
  t.is(c.clientId, 'c1');
  t.is(c.userAgent, 'test-agent/1.0');
  t.is(c.ip, '127.0.0.1');
  t.deepEqual(c.attributes, { team: 'blue' });

  // The hash correlates: another connection of the same session token gets the same one.
  const twin = await RawStream.open(t, `${base}/connect?access-token=7`, { headers: { Authorization: `Bearer ${RAW_TOKEN}` } });
  const twinInfo = pageOf(t, await get(`${base}/connect/connections.json?access-token=admin&id=${twin.connectionId}`)).list[0];
  t.is(twinInfo.accessTokenHash, c.accessTokenHash);
});

test('the access-token query parameter of the stream is not kept as an attribute', async (t) => {
  const { base } = await startPlugin(t);
  const s = await RawStream.open(t, `${base}/connect?access-token=7@3&x=1`);
  const reply = await get(`${base}/connect/connections.json?access-token=admin&id=${s.connectionId}`);
  const c = pageOf(t, reply).list[0];
  t.deepEqual(c.attributes, { x: '1' });
  t.false(reply.text.includes('7@3'));
  t.truthy(c.accessTokenHash);
});

test('a custom redactUser decides what admin listings show', async (t) => {
  const { base } = await startPlugin(t, { redactUser: (u) => ({ who: `#${String(u.id)}` }) });
  await RawStream.open(t, `${base}/connect?access-token=7`);
  const users = pageOf(t, await get(`${base}/connect/users.json?access-token=admin`));
  t.deepEqual(users.list, [{ who: '#7' }]);
  const connections = pageOf(t, await get(`${base}/connect/connections.json?access-token=admin`));
  t.deepEqual(connections.list[0].user, { who: '#7' });
  t.false(JSON.stringify(connections).includes('do-not-leak'));
});

test('stats.json and kick.do are for admins; kick closes the connection with reason kick', async (t) => {
  const { base, plugin } = await startPlugin(t, { qos: { file: ':memory:' } });
  const s = await RawStream.open(t, `${base}/connect?access-token=7`);
  await RawStream.open(t, `${base}/connect?access-token=8`);
  await plugin.hub.sendAll('x', 1);
  const stats = await getJson(`${base}/connect/stats.json?access-token=admin`);
  t.is(stats.status, 200);
  t.like(stats.body.data, { name: 'test', users: 2, connections: 2, partial: false, qos: { pending: 0 }, cluster: null });
  t.like(stats.body.data.local, { connections: 2, eventsSent: 2, connects: 2 });
  t.is((await getJson(`${base}/connect/stats.json?access-token=7`)).status, 403);
  t.is((await postJson(`${base}/connect/kick.do?access-token=7`, { connectionId: s.connectionId })).status, 403);
  t.is((await postJson(`${base}/connect/kick.do?access-token=admin`, {})).status, 400);
  const kicked = await postJson(`${base}/connect/kick.do?access-token=admin`, { connectionId: s.connectionId });
  t.deepEqual(kicked.body.data, { closed: 1 });
  await s.waitEnd();
  t.like(JSON.parse((await s.next('connect-close')).data), { reason: 'kick', reconnect: false });
  t.deepEqual((await postJson(`${base}/connect/kick.do?access-token=admin`, { userId: 8 })).body.data, { closed: 1 });
});
