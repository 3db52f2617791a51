// `waitForDelivery` (the Java library's future): a durable send whose promise resolves once
// the message was delivered, over real HTTP with a SQLite store.
import test from 'ava';
import { postJson, startPlugin } from './helpers/server.js';
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
  t.deepEqual(result, { messageId: got.id!, delivered: 0, acknowledged: true });
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
  t.deepEqual(await cancelled, { messageId: id, delivered: 0, acknowledged: false });
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
