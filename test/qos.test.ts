import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { ssePlugin, type QosAckedEvent, type QosExpiredEvent } from '../lib/index.js';
import { getJson, listen, postJson, sleep, startPlugin, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const memory = { qos: { file: ':memory:' } };

test('an offline user gets the message on connect; a client without acks is done once written', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const qos = plugin.hub.qos;
  const sent = await qos.sendByUserId(7, 'offer', { candidate: 'Ada' });
  t.deepEqual(sent.delivered, 0);
  t.regex(sent.messageId, /^[0-9a-f]{26}$/);
  t.is(qos.pendingCount({ userId: 7 }), 1);
  const acked = new Promise<QosAckedEvent>((resolve) => plugin.hub.once('qos-acked', resolve));
  const s = await RawStream.open(t, `${base}/connect?access-token=7`);
  const got = await s.next('offer');
  t.is(got.id, sent.messageId);
  t.deepEqual(JSON.parse(got.data), { candidate: 'Ada' });
  const event = await acked;
  t.like(event, { messageId: sent.messageId, kind: 'user', key: '7', by: 'write', complete: true, connectionId: s.connectionId });
  t.is(qos.pendingCount({ userId: 7 }), 0);
  t.is(await qos.status(sent.messageId), undefined);
  // Nothing is resent on the next connection.
  const again = await RawStream.open(t, `${base}/connect?access-token=7`);
  await plugin.hub.sendByConnectionId(again.connectionId, 'end', 1);
  await again.next('end');
  t.is(again.named('offer').length, 0);
});

test('an online user gets it at once, with an id; the promise resolves after the commit', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const s = await RawStream.open(t, `${base}/connect?access-token=7&ack=1`);
  const sent = await plugin.hub.qos.sendByUserId([7, 8], 'bell', 'ring');
  t.is(sent.delivered, 1);
  t.is((await s.next('bell')).id, sent.messageId);
  const status = (await plugin.hub.qos.status(sent.messageId))!;
  t.deepEqual(status.targets.map((x) => `${x.kind}:${x.key}`).sort(), ['user:7', 'user:8']);
});

test('two tabs with acks: both get it, the first ack completes it, later tabs get nothing', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const qos = plugin.hub.qos;
  const sent = await qos.sendByUserId(5, 'offer', 1);
  const tab1 = await RawStream.open(t, `${base}/connect?access-token=5&ack=1`);
  const tab2 = await RawStream.open(t, `${base}/connect?access-token=5&ack=1`);
  t.is((await tab1.next('offer')).id, sent.messageId);
  t.is((await tab2.next('offer')).id, sent.messageId);
  t.is(qos.pendingCount({ userId: 5 }), 1, 'ack-mode clients keep it pending until they ack');
  const acked = new Promise<QosAckedEvent>((resolve) => plugin.hub.once('qos-acked', resolve));
  const res = await postJson(`${base}/connect/ack.do?access-token=5`, { connectionId: tab1.connectionId, ids: [sent.messageId] });
  t.is(res.status, 200);
  t.deepEqual(res.body.data, { acked: 1 });
  t.like(await acked, { messageId: sent.messageId, by: 'ack', complete: true, connectionId: tab1.connectionId });
  const late = await postJson(`${base}/connect/ack.do?access-token=5`, { connectionId: tab2.connectionId, ids: [sent.messageId] });
  t.deepEqual(late.body.data, { acked: 0 });
  const tab3 = await RawStream.open(t, `${base}/connect?access-token=5&ack=1`);
  await plugin.hub.sendByConnectionId(tab3.connectionId, 'end', 1);
  await tab3.next('end');
  t.is(tab3.named('offer').length, 0);
});

test('an unacked message is resent on every new connection, in order', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push((await plugin.hub.qos.sendByUserId(3, 'n', i)).messageId);
  for (let round = 0; round < 2; round++) {
    const s = await RawStream.open(t, `${base}/connect?access-token=3&ack=1`);
    await s.until(() => s.named('n').length === 20, '20 messages');
    t.deepEqual(
      s.named('n').map((e) => e.id),
      ids,
    );
    t.deepEqual(
      s.named('n').map((e) => Number(e.data)),
      [...Array(20).keys()],
    );
    await s.close();
  }
  t.deepEqual([...ids].sort(), ids, 'ids sort by time');
});

test('access-token targets are queues too', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const sent = await plugin.hub.qos.sendByAccessToken('9@1', 'session', 'x');
  const s = await RawStream.open(t, `${base}/connect?access-token=9@1`);
  t.is((await s.next('session')).id, sent.messageId);
  await s.until(() => plugin.hub.qos.pendingCount({ accessToken: '9@1' }) === 0, 'write-ack');
  t.pass();
});

test('a listening-mode message waits until the connection listens to its event', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const sent = await plugin.hub.qos.sendByUserId(4, 'bell', 'ding', { listening: true });
  const s = await RawStream.open(t, `${base}/connect?access-token=4&listeners=chat`);
  await plugin.hub.sendByConnectionId(s.connectionId, 'marker', 1);
  await s.next('marker');
  t.is(s.named('bell').length, 0);
  t.is(plugin.hub.qos.pendingCount({ userId: 4 }), 1);
  const res = await postJson(`${base}/connect/addListener.do?access-token=4`, { connectionId: s.connectionId, listener: ['bell'] });
  t.is(res.status, 200);
  t.is((await s.next('bell')).id, sent.messageId);
  // Live listening sends reach it now too.
  const live = await plugin.hub.qos.sendByUserId(4, 'bell', 'dong', { listening: true });
  t.is(live.delivered, 1);
});

test('resume with Last-Event-ID replays exactly the missed group messages', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const qos = plugin.hub.qos;
  const first = await RawStream.open(t, `${base}/connect?access-token=1@10&channel=news`);
  const m1 = await qos.sendByTenantId(10, 'tenant-news', 'm1');
  t.is(m1.delivered, 1);
  t.is((await first.next('tenant-news')).id, m1.messageId);
  await first.close();
  const m2 = await qos.sendByTenantId(10, 'tenant-news', 'm2');
  const other = await qos.sendByTenantId(20, 'tenant-news', 'not mine');
  const m3 = await qos.sendByChannel('news', 'channel-news', 'm3');
  const m4 = await qos.sendAll('everyone', 'm4');
  await qos.sendByChannel('sport', 'channel-news', 'not mine either');
  const resumed = await RawStream.open(t, `${base}/connect?access-token=1@10&channel=news`, { headers: { 'last-event-id': m1.messageId } });
  await resumed.until(() => resumed.events.length >= 4, 'three replayed');
  await plugin.hub.sendByConnectionId(resumed.connectionId, 'end', 1);
  await resumed.next('end');
  t.deepEqual(
    resumed.events.filter((e) => e.id).map((e) => e.id),
    [m2.messageId, m3.messageId, m4.messageId],
  );
  t.false(resumed.events.some((e) => e.id === other.messageId));
  // lastEventId as a parameter works the same (EventSource cannot set headers on a fresh page).
  const byParam = await RawStream.open(t, `${base}/connect?access-token=2@10&lastEventId=${m3.messageId}`);
  await byParam.next('everyone');
  // A fresh connection without a resume point gets only what is sent from now on.
  const fresh = await RawStream.open(t, `${base}/connect?access-token=3@10`);
  await plugin.hub.sendByConnectionId(fresh.connectionId, 'end', 1);
  await fresh.next('end');
  t.is(fresh.events.filter((e) => e.id).length, 0);
});

test('TTL expiry fires qos-expired and the message is gone', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const expired: QosExpiredEvent[] = [];
  plugin.hub.on('qos-expired', (e) => expired.push(e));
  const short = await plugin.hub.qos.sendByUserId([1, 2], 'brief', 1, { ttlMs: 30 });
  const long = await plugin.hub.qos.sendByUserId(1, 'lasting', 1);
  await sleep(60);
  t.is(await plugin.hub.qos.expireNow(), 1);
  t.deepEqual(expired.map((e) => `${e.messageId}:${e.key}:${e.event}`).sort(), [`${short.messageId}:1:brief`, `${short.messageId}:2:brief`]);
  t.is(await plugin.hub.qos.status(short.messageId), undefined);
  t.truthy(await plugin.hub.qos.status(long.messageId));
  const s = await RawStream.open(t, `${base}/connect?access-token=1`);
  await s.next('lasting');
  t.is(s.named('brief').length, 0);
});

test('caps refuse a send with ERR_SSE_QUEUE_FULL and store nothing', async (t) => {
  const { plugin } = await startPlugin(t, { qos: { file: ':memory:', maxPendingPerTarget: 2, maxMessages: 4, maxMessageBytes: 100 } });
  const qos = plugin.hub.qos;
  await qos.sendByUserId(1, 'a', 1);
  await qos.sendByUserId(1, 'a', 2);
  await t.throwsAsync(() => qos.sendByUserId([2, 1], 'a', 3), { code: 'ERR_SSE_QUEUE_FULL' } as never);
  t.is(qos.pendingCount({ userId: 2 }), 0, 'a refused send stores nothing for any of its targets');
  await qos.sendByUserId(2, 'a', 4);
  await qos.sendByTenantId(1, 'a', 5);
  await t.throwsAsync(() => qos.sendByChannel('c', 'a', 6), { code: 'ERR_SSE_QUEUE_FULL' } as never);
  t.is(qos.pendingCount(), 4);
  await t.throwsAsync(() => qos.sendByUserId(3, 'a', 'x'.repeat(200)), { code: 'ERR_SSE_PAYLOAD_TOO_LARGE' } as never);
  await t.throwsAsync(() => qos.sendByUserId(3, '', 1), { instanceOf: TypeError });
});

test('cancel removes a pending message for good', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const qos = plugin.hub.qos;
  const a = await qos.sendByUserId(6, 'x', 'cancelled');
  const b = await qos.sendByUserId(6, 'x', 'kept');
  t.true(await qos.cancel(a.messageId));
  t.false(await qos.cancel(a.messageId));
  t.false(await qos.cancel('not-an-id'));
  t.is(qos.pendingCount({ userId: 6 }), 1);
  const s = await RawStream.open(t, `${base}/connect?access-token=6`);
  t.is((await s.next('x')).id, b.messageId);
  t.is(s.named('x').length, 1);
});

test('ack.do refuses bad input without harm: unknown, foreign and malformed ids', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const qos = plugin.hub.qos;
  const forOther = await qos.sendByUserId(2, 'x', 1);
  const mine = await RawStream.open(t, `${base}/connect?access-token=1&ack=1`);
  const ack = (token: string, body: unknown) => postJson(`${base}/connect/ack.do?access-token=${token}`, body);
  // Someone else's message id: nothing happens.
  t.deepEqual((await ack('1', { connectionId: mine.connectionId, ids: [forOther.messageId] })).body.data, { acked: 0 });
  t.is(qos.pendingCount({ userId: 2 }), 1);
  // Unknown but well-formed id.
  t.deepEqual((await ack('1', { connectionId: mine.connectionId, ids: ['0'.repeat(26)] })).body.data, { acked: 0 });
  for (const bad of [
    { connectionId: mine.connectionId, ids: ['nope'] },
    { connectionId: mine.connectionId, ids: 'x' },
    { connectionId: mine.connectionId },
    { connectionId: mine.connectionId, ids: Array(1001).fill('0'.repeat(26)) },
  ]) {
    const res = await ack('1', bad);
    t.is(res.status, 400);
    t.is(res.body.code, 'ERR_SSE_BAD_REQUEST');
  }
  t.is((await ack('2', { connectionId: mine.connectionId, ids: [forOther.messageId] })).status, 403, 'not your connection');
  t.is((await ack('1', { connectionId: 'unknown', ids: [] })).status, 404);
  t.is((await ack('', { connectionId: mine.connectionId, ids: [] })).status, 401);
  t.is((await postJson(`${base}/connect/ack.do?access-token=1`, '{oops')).status, 400);
  t.is(qos.pendingCount({ userId: 2 }), 1);
});

test('a backlog larger than the write buffer drains without tripping the slow-reader cap', async (t) => {
  const { base, plugin } = await startPlugin(t, { qos: { file: ':memory:' }, writeBufferLimit: 64 * 1024 });
  const payload = 'p'.repeat(200);
  for (let i = 0; i < 3000; i++) void plugin.hub.qos.sendByUserId(11, 'bulk', { i, payload });
  await plugin.hub.qos.sendByUserId(11, 'last', 1);
  const s = await RawStream.open(t, `${base}/connect?access-token=11`);
  await s.next('last', 10_000);
  t.is(s.named('bulk').length, 3000);
  t.deepEqual(
    s.named('bulk').map((e) => JSON.parse(e.data).i),
    [...Array(3000).keys()],
  );
  t.false(s.ended);
});

test('pending messages survive a restart on the same file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-qos-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub', 'q.db');
  const first = ssePlugin('/sse/test', { authenticate: tokenUser, qos: { file } });
  const sent = await first.hub.qos.sendByUserId(12, 'kept', { n: 1 });
  const tenant = await first.hub.qos.sendByTenantId(3, 'log', 'retained');
  await first.close();
  const app = new Koa();
  const second = ssePlugin('/sse/test', { authenticate: tokenUser, qos: { file } });
  app.use(second);
  t.teardown(() => second.close());
  const { origin } = await listen(t, app);
  t.is(second.hub.qos.pendingCount({ userId: 12 }), 1);
  const s = await RawStream.open(t, `${origin}/sse/test/connect?access-token=12@3&lastEventId=${'0'.repeat(26)}`);
  t.is((await s.next('kept')).id, sent.messageId);
  t.is((await s.next('log')).id, tenant.messageId);
});

test('repositoryMessages.json lists stored messages for admins only, tokens hashed', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const qos = plugin.hub.qos;
  await qos.sendByUserId(1, 'a', { n: 1 });
  await qos.sendByUserId(2, 'b', { n: 2 });
  await qos.sendByAccessToken('secret-token', 'c', 3);
  await qos.sendByTenantId(5, 'd', 4);
  const all = await getJson(`${base}/connect/repositoryMessages.json?access-token=admin`);
  t.is(all.status, 200);
  t.is(all.body.data.total, 4);
  t.deepEqual(
    all.body.data.list.map((m: { event: string }) => m.event),
    ['a', 'b', 'c', 'd'],
  );
  t.false(JSON.stringify(all.body).includes('secret-token'));
  const user2 = await getJson(`${base}/connect/repositoryMessages.json?access-token=admin&userId=2`);
  t.deepEqual(
    user2.body.data.list.map((m: { event: string }) => m.event),
    ['b'],
  );
  const paged = await getJson(`${base}/connect/repositoryMessages.json?access-token=admin&pageNum=2&pageSize=3`);
  t.is(paged.body.data.list.length, 1);
  t.is((await getJson(`${base}/connect/repositoryMessages.json?access-token=1`)).status, 403);
  t.is((await getJson(`${base}/connect/repositoryMessages.json`)).status, 401);
});

test('hub.qos without the qos option is a clear error; endpoints answer 404', async (t) => {
  const { base, plugin } = await startPlugin(t);
  t.throws(() => plugin.hub.qos, { code: 'ERR_SSE_QOS_DISABLED' } as never);
  t.false(plugin.hub.hasQos);
  t.is((await getJson(`${base}/connect/repositoryMessages.json?access-token=admin`)).status, 404);
  const s = await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is((await postJson(`${base}/connect/ack.do?access-token=1`, { connectionId: s.connectionId, ids: [] })).status, 404);
  t.throws(() => ssePlugin('/x', { authenticate: tokenUser, qos: { file: '' } }), { instanceOf: TypeError });
  t.throws(() => ssePlugin('/x', { authenticate: tokenUser, qos: { file: ':memory:', synchronous: 'OFF' as never } }), { instanceOf: TypeError });
});

test('the expiry timer removes expired messages by itself', async (t) => {
  const { plugin } = await startPlugin(t, { qos: { file: ':memory:', expiryIntervalMs: 30 } });
  const expired = new Promise<QosExpiredEvent>((resolve) => plugin.hub.once('qos-expired', resolve));
  const sent = await plugin.hub.qos.sendByUserId(1, 'brief', 1, { ttlMs: 10 });
  t.is((await expired).messageId, sent.messageId);
  t.is(plugin.hub.qos.pendingCount(), 0);
});
