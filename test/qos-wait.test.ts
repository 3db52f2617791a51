// `waitForDelivery` (the Java library's future): a durable send whose promise resolves once
// the message was delivered, over real HTTP with a SQLite store.
import test from 'ava';
import { MemoryBus } from '../lib/index.js';
import { postJson, sleep, startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const memory = { qos: { file: ':memory:' } };

test('waitForDelivery: the send resolves only once the user acknowledged, with acknowledged: true', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  let settled = false;
  const sending = plugin.hub.qos.sendByUserId(7, 'offer', { n: 1 }, { waitForDelivery: true }).finally(() => (settled = true));
  const s = await RawStream.open(t, `${base}/connect?access-token=7&ack=1`);
  const got = await s.next('offer');
  t.false(settled, 'written, not yet acknowledged');
  const acked = await postJson(`${base}/connect/ack.do?access-token=7`, { connectionId: s.connectionId, ids: [got.id] });
  t.is(acked.status, 200);
  const result = await sending;
  t.deepEqual(result, { messageId: got.id!, delivered: 0, copies: 1, acknowledged: true });
});

test('waitForDelivery: two users: resolves once both acknowledged; a client that cannot ack counts once written', async (t) => {
  const { base, plugin } = await startPlugin(t, memory);
  const events: string[] = [];
  const sending = plugin.hub.qos.sendByUserId([1, 2], 'offer', 'x', { waitForDelivery: 10_000 }).then((r) => {
    events.push('resolved');
    return r;
  });
  // User 1 reads with a plain EventSource-like client (no ack=1): done once written.
  const one = await RawStream.open(t, `${base}/connect?access-token=1`);
  await one.next('offer');
  const two = await RawStream.open(t, `${base}/connect?access-token=2&ack=1`);
  const got = await two.next('offer');
  t.deepEqual(events, []);
  events.push('ack');
  await postJson(`${base}/connect/ack.do?access-token=2`, { connectionId: two.connectionId, ids: [got.id] });
  t.true((await sending).acknowledged);
  t.deepEqual(events, ['ack', 'resolved']);
});

test('waitForDelivery: false when the wait runs out or the message is cancelled; the message stays stored until then', async (t) => {
  const { plugin } = await startPlugin(t, memory);
  const qos = plugin.hub.qos;
  const timedOut = await qos.sendByUserId(7, 'offer', 1, { waitForDelivery: 50 });
  t.false(timedOut.acknowledged);
  t.not(await qos.status(timedOut.messageId), undefined, 'still pending: at least once holds');
  let id = '';
  const cancelled = qos.sendByUserId(7, 'offer', 2, { waitForDelivery: true });
  // The id is known once stored: cancel it from the listing.
  for (let i = 0; i < 100 && id === ''; i++) {
    await new Promise((r) => setImmediate(r));
    id = (await qos.list({ userId: '7' }, 0, 10)).items.map((e) => e.message.id).find((m) => m !== timedOut.messageId) ?? '';
  }
  t.true(await qos.cancel(id));
  t.deepEqual(await cancelled, { messageId: id, delivered: 0, copies: 1, acknowledged: false });
});

test('waitForDelivery is refused for tenant, channel and all sends (never acknowledged) and for a bad value', async (t) => {
  const { plugin } = await startPlugin(t, memory);
  const qos = plugin.hub.qos;
  await t.throwsAsync(() => qos.sendByTenantId('t1', 'news', 1, { waitForDelivery: true }), { instanceOf: TypeError, message: /never acknowledged/ });
  await t.throwsAsync(() => qos.sendAll('news', 1, { waitForDelivery: true }), { instanceOf: TypeError });
  await t.throwsAsync(() => qos.sendByUserId(1, 'news', 1, { waitForDelivery: -5 }), { instanceOf: TypeError });
  const plain = await qos.sendByUserId(1, 'news', 1, { waitForDelivery: false });
  t.is(plain.acknowledged, undefined);
});

test('newConnectionLogMs: a tab or device that opens later gets the group messages of the window; by default only a reconnect resumes them', async (t) => {
  const later = await startPlugin(t, { qos: { file: ':memory:', newConnectionLogMs: 60_000 } });
  const before = await startPlugin(t, memory);
  for (const { plugin } of [later, before]) {
    await plugin.hub.qos.sendByTenantId('t1', 'tenant-news', 1);
    await plugin.hub.qos.sendByChannel('room', 'room-news', 2);
    await plugin.hub.qos.sendAll('all-news', 3);
    await plugin.hub.qos.sendByTenantId('t2', 'other-tenant', 4);
  }
  const s = await RawStream.open(t, `${later.base}/connect?access-token=5@t1&channel=room`);
  await s.next('all-news');
  t.deepEqual(
    s.events.filter((e) => e.event.endsWith('news')).map((e) => e.event),
    ['tenant-news', 'room-news', 'all-news'],
    'oldest first, each once, nothing of another tenant',
  );
  t.is(s.named('other-tenant').length, 0);
  // Default: a new connection starts with what is sent from now on.
  const d = await RawStream.open(t, `${before.base}/connect?access-token=5@t1&channel=room`);
  await before.plugin.hub.sendByConnectionId(d.connectionId, 'marker', 0);
  await d.next('marker');
  t.deepEqual(
    d.events.filter((e) => e.event.endsWith('news')),
    [],
  );
});

test('newConnectionLogMs: messages older than the window are not replayed to a new connection', async (t) => {
  // A window wide enough for a loaded machine to connect within it; the old message is well past it.
  const { base, plugin } = await startPlugin(t, { qos: { file: ':memory:', newConnectionLogMs: 2000 } });
  await plugin.hub.qos.sendByTenantId('t1', 'old-news', 1);
  await sleep(2500);
  await plugin.hub.qos.sendByTenantId('t1', 'fresh-news', 2);
  const s = await RawStream.open(t, `${base}/connect?access-token=5@t1`);
  await s.next('fresh-news');
  t.is(s.named('old-news').length, 0);
});

test('newConnectionLogMs in a cluster: a new connection on another node gets the group message its owner holds', async (t) => {
  const bus = new MemoryBus();
  const node = async (id: string) => {
    const started = await startPlugin(t, {
      qos: { file: ':memory:', newConnectionLogMs: 60_000 },
      cluster: { transport: bus.transport(id), timeoutMs: 2000 },
    });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  const sent = await a.plugin.hub.qos.sendByTenantId('t1', 'tenant-news', 'from a');
  const s = await RawStream.open(t, `${b.base}/connect?access-token=5@t1`);
  t.is((await s.next('tenant-news')).id, sent.messageId);
});

test('waitForDelivery in a LAN cluster: the ack made through another node comes back to the owner and resolves the send', async (t) => {
  const bus = new MemoryBus();
  const node = async (id: string) => {
    const started = await startPlugin(t, { qos: { file: ':memory:' }, cluster: { transport: bus.transport(id), timeoutMs: 2000 } });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  const sending = a.plugin.hub.qos.sendByUserId(7, 'offer', 'from a', { waitForDelivery: 20_000 });
  const s = await RawStream.open(t, `${b.base}/connect?access-token=7&ack=1`);
  const got = await s.next('offer');
  await postJson(`${b.base}/connect/ack.do?access-token=7`, { connectionId: s.connectionId, ids: [got.id] });
  t.like(await sending, { messageId: got.id, acknowledged: true });
});
