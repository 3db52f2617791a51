// `qos: { store }`: durable delivery over a store the app brings, here the PostgreSQL example
// (example/postgres-qos-store.ts) on a real PostgreSQL server: one node, then two nodes of a
// cluster sharing one database (like the Redis store: any node drains a queue, an ack through
// any node removes the entry).
import test, { type ExecutionContext } from 'ava';
import { MemoryBus, type QosStore } from '../lib/index.js';
import { PostgresQosStore } from '../example/postgres-qos-store.js';
import { PostgresServer, postgresTest } from './helpers/postgres-server.js';
import { postJson, startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const teardowns: (() => Promise<void> | void)[] = [];
const context = { teardown: (fn: () => Promise<void> | void) => void teardowns.push(fn) } as unknown as ExecutionContext;
test.after.always(async () => {
  for (const fn of teardowns.reverse()) await fn();
});
const { unavailable } = postgresTest('test/qos-own-store.test.ts');
let server: PostgresServer | undefined;
if (unavailable === undefined) test.before(async () => void (server = await PostgresServer.start(context)));
const pgTest = unavailable === undefined ? test : test.skip;
let n = 0;

pgTest('a store of the app’s own: a durable send waits for the user, is replayed on connect and removed by the ack', async (t) => {
  const store = await PostgresQosStore.open({ pool: server!.url, table: `own_${n++}` });
  const { base, plugin } = await startPlugin(t, { qos: { store } });
  const qos = plugin.hub.qos;
  const sent = await qos.sendByUserId(7, 'offer', { candidate: 'Ada' });
  t.is(sent.delivered, 0);
  t.true(sent.messageId.endsWith(store.tag));
  t.deepEqual((await qos.status(sent.messageId))?.targets, [{ kind: 'user', key: '7' }]);
  const s = await RawStream.open(t, `${base}/connect?access-token=7&ack=1`);
  const got = await s.next('offer');
  t.is(got.id, sent.messageId);
  t.deepEqual(JSON.parse(got.data), { candidate: 'Ada' });
  const acked = await postJson(`${base}/connect/ack.do?access-token=7`, { connectionId: s.connectionId, ids: [sent.messageId] });
  t.is(acked.status, 200, JSON.stringify(acked.body));
  t.is(await qos.status(sent.messageId), undefined);
  t.is((await store.counts()).total, 0);
});

pgTest('two nodes sharing one database: a send on one reaches the user on the other, whose ack removes it', async (t) => {
  const table = `shared_${n++}`;
  const bus = new MemoryBus();
  const node = async (id: string) => {
    const store = await PostgresQosStore.open({ pool: server!.url, table });
    const started = await startPlugin(t, { qos: { store }, cluster: { transport: bus.transport(id), timeoutMs: 2000 } });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  const sent = await a.plugin.hub.qos.sendByUserId(9, 'task', 'from a');
  // A send that waits for delivery on a, acknowledged through b: a learns it from the store.
  const waiting = a.plugin.hub.qos.sendByUserId(9, 'task', 'wait for it', { waitForDelivery: 30_000 });
  const s = await RawStream.open(t, `${b.base}/connect?access-token=9&ack=1`);
  const got = await s.next('task');
  t.is(got.id, sent.messageId);
  t.is(s.named('task').filter((e) => e.id === sent.messageId).length, 1, 'once: b owns it too (one tag), and a does not push it again');
  const acked = await postJson(`${b.base}/connect/ack.do?access-token=9`, { connectionId: s.connectionId, ids: [sent.messageId] });
  t.is(acked.status, 200, JSON.stringify(acked.body));
  t.is(await a.plugin.hub.qos.status(sent.messageId), undefined, 'gone for a as well');
  const second = await s.next('task');
  await postJson(`${b.base}/connect/ack.do?access-token=9`, { connectionId: s.connectionId, ids: [second.id] });
  t.like(await waiting, { messageId: second.id, acknowledged: true });
});

test('a store that lacks part of the contract is refused at start, naming what is missing', async (t) => {
  const half = { tag: '0123abcd', shared: false, insert: () => undefined } as unknown as QosStore;
  await t.throwsAsync(async () => startPlugin(t, { qos: { store: half } }), { instanceOf: TypeError, message: /lacks remove, messagesFor/ });
  await t.throwsAsync(async () => startPlugin(t, { qos: { store: { ...half, tag: 'XYZ' } as QosStore } }), { message: /tag must be 8/ });
  await t.throwsAsync(async () => startPlugin(t, { qos: { store: half, file: ':memory:' } }), { message: /exactly one of/ });
});
