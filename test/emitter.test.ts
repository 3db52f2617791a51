// createEmitter (issue 26): a process that serves no streams publishes to users connected to
// two nodes, on the Redis engine straight through Redis (real redis-server; durable sends into
// the nodes' Redis store), and on a LAN cluster through the publish API.
import test, { type ExecutionContext } from 'ava';
import { createEmitter, hashApiKey, type SseError } from '../lib/index.js';
import { eventually, introduce, SECRET } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { postJson, startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

type Events = { 'invoice-paid': { invoice: number }; ping: undefined };
const KEY = 'emitter-test-key-0123456789abcdef';
const { unavailable } = redisTest('emitter.test.ts');
const redisOnly = unavailable === undefined ? test : test.skip;

async function redisNodes(t: ExecutionContext, redis: RedisServer): Promise<StartedPlugin[]> {
  const nodes: StartedPlugin[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await startPlugin(t, { cluster: { redis: redis.url, timeoutMs: 3000, healthIntervalMs: 500 }, qos: { redis: redis.url } });
    await s.plugin.hub.ready();
    nodes.push(s);
  }
  for (const n of nodes) await eventually(() => n.plugin.hub.cluster!.peers().length === 1, 'peers up', 10_000);
  return nodes;
}

redisOnly('on Redis: live sends reach users on both nodes with their count, without an HTTP hop or becoming a peer', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b] = await redisNodes(t, redis);
  const seven = await RawStream.open(t, `${a!.base}/connect?access-token=7`);
  const eight = await RawStream.open(t, `${b!.base}/connect?access-token=8`);
  const emitter = createEmitter<Events>({ redis: redis.url, name: 'test', healthIntervalMs: 500 });
  t.teardown(() => emitter.close());
  t.is(await emitter.sendByUserId([7, 8], 'invoice-paid', { invoice: 1042 }), 2);
  for (const s of [seven, eight]) t.deepEqual(JSON.parse((await s.next('invoice-paid')).data), { invoice: 1042 });
  t.is(await emitter.sendAll('ping'), 2);
  t.is(await emitter.sendByUserId(99, 'invoice-paid', { invoice: 1 }), 0, 'nobody');
  t.is(a!.plugin.hub.cluster!.peers().length, 1, 'the emitter is no peer');
  // Types only (never called): the event map checks the payload.
  const mistyped = (): Promise<number> =>
    // @ts-expect-error invoice is a number
    emitter.sendByUserId(7, 'invoice-paid', { invoice: 'x' });
  t.is(typeof mistyped, 'function');
});

redisOnly('on Redis: a durable send is stored in the nodes’ store and replayed to a user who connects later', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b] = await redisNodes(t, redis);
  const emitter = createEmitter<Events>({ redis: redis.url, name: 'test', healthIntervalMs: 500, qos: {} });
  t.teardown(() => emitter.close());
  const online = await RawStream.open(t, `${a!.base}/connect?access-token=7&ack=1`);
  const live = await emitter.qos.sendByUserId(7, 'invoice-paid', { invoice: 1 });
  t.is(live.delivered, 1);
  t.is((await online.next('invoice-paid')).id, live.messageId);
  const later = await emitter.qos.sendByUserId(9, 'invoice-paid', { invoice: 2 });
  t.is(later.delivered, 0);
  t.is((await b!.plugin.hub.qos.list({ userId: '9' }, 0, 10)).total, 1, 'stored in the shared store');
  const nine = await RawStream.open(t, `${b!.base}/connect?access-token=9&ack=1`);
  const got = await nine.next('invoice-paid');
  t.is(got.id, later.messageId);
  t.is((await postJson(`${b!.base}/connect/ack.do?access-token=9`, { connectionId: nine.connectionId, ids: [later.messageId] })).status, 200);
  await eventually(async () => (await a!.plugin.hub.qos.list({ userId: '9' }, 0, 10)).total === 0, 'acked');
  const plain = createEmitter({ redis: redis.url, name: 'test' });
  t.teardown(() => plain.close());
  t.throws(() => void plain.qos.sendAll('x'), { instanceOf: TypeError, message: /qos option/ });
});

redisOnly('on Redis: a durable send retried with an idempotencyKey is stored and delivered once, and every answer has its first id', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const [a, b] = await redisNodes(t, redis);
  const emitter = createEmitter<Events>({ redis: redis.url, name: 'test', healthIntervalMs: 500, qos: {} });
  t.teardown(() => emitter.close());
  const seven = await RawStream.open(t, `${a!.base}/connect?access-token=7&ack=1`);
  const key = `emitter-retry-${process.pid}-${Date.now()}`;
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await emitter.qos.sendByUserId(7, 'invoice-paid', { invoice: 7 }, { idempotencyKey: key }));
  t.is(answers[0]!.delivered, 1);
  t.deepEqual(
    answers.map((r) => r.messageId),
    [answers[0]!.messageId, answers[0]!.messageId, answers[0]!.messageId],
    'the first id in every answer',
  );
  t.deepEqual(
    answers.slice(1).map((r) => r.delivered),
    [0, 0],
    'the retries deliver nothing',
  );
  const stored = await b!.plugin.hub.qos.list({ userId: '7' }, 0, 10);
  t.is(stored.total, 1, 'stored once in the shared store');
  // A live send after the retries: once it is here, a second copy of the durable one would be too.
  await emitter.sendByUserId(7, 'ping');
  await seven.next('ping');
  t.deepEqual(
    seven.events.filter((e) => e.event === 'invoice-paid').map((e) => e.id),
    [answers[0]!.messageId],
    'delivered once',
  );
  await t.throwsAsync(emitter.qos.sendByUserId(7, 'invoice-paid', { invoice: 7 }, { idempotencyKey: '' }), {
    instanceOf: TypeError,
    message: /idempotencyKey/,
  });
});

test('through the publish API (LAN cluster): live and durable sends reach users on both nodes; a bad key is refused', async (t) => {
  const nodes: StartedPlugin[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await startPlugin(t, {
      cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: 3000, healthIntervalMs: 100 },
      qos: { file: ':memory:' },
      publish: { keys: [{ id: 'worker', hash: hashApiKey(KEY) }] },
    });
    await s.plugin.hub.ready();
    nodes.push(s);
  }
  introduce(nodes.map((n) => n.plugin.hub));
  for (const n of nodes) await eventually(() => n.plugin.hub.cluster!.peers().length === 1, 'peers up');
  const [a, b] = nodes;
  const seven = await RawStream.open(t, `${a!.base}/connect?access-token=7`);
  const eight = await RawStream.open(t, `${b!.base}/connect?access-token=8`);
  const emitter = createEmitter<Events>({ url: a!.base, apiKey: KEY });
  t.is(await emitter.sendByUserId([7, '8'], 'invoice-paid', { invoice: 5 }), 2);
  for (const s of [seven, eight]) t.deepEqual(JSON.parse((await s.next('invoice-paid')).data), { invoice: 5 });
  const durable = await emitter.qos.sendByUserId(8, 'invoice-paid', { invoice: 6 });
  t.is(durable.delivered, 1);
  t.is((await eight.next('invoice-paid')).id, durable.messageId);
  // With an idempotencyKey the publish API answers a retry with the first id (node a's SQLite store keeps the key).
  const key = `emitter-http-${process.pid}-${Date.now()}`;
  const first = await emitter.qos.sendByUserId(8, 'invoice-paid', { invoice: 7 }, { idempotencyKey: key });
  t.deepEqual(await emitter.qos.sendByUserId(8, 'invoice-paid', { invoice: 7 }, { idempotencyKey: key }), {
    messageId: first.messageId,
    delivered: 0,
    copies: 1,
  });
  t.is((await eight.next('invoice-paid')).id, first.messageId);
  const wrong = createEmitter<Events>({ url: a!.base, apiKey: 'not-the-key' });
  const err = await t.throwsAsync<SseError>(wrong.sendAll('ping'));
  t.is(err?.code, 'ERR_SSE_UNAUTHORIZED');
  t.is(err?.status, 401);
});

test('bad options throw a TypeError at once, naming the option', (t) => {
  t.throws(() => createEmitter({ url: 'http://127.0.0.1:1/sse', apiKey: 'k', timeoutMS: 5 } as never), {
    instanceOf: TypeError,
    message: /timeoutMS.*timeoutMs/,
  });
  t.throws(() => createEmitter({ redis: 'redis://127.0.0.1:1' }), { instanceOf: TypeError, message: /name/ });
  t.throws(() => createEmitter({ url: 'ftp://x', apiKey: 'k' }), { instanceOf: TypeError, message: /url/ });
  const emitter = createEmitter({ url: 'http://127.0.0.1:1/sse', apiKey: 'k' });
  t.throws(() => void emitter.sendAll(''), { instanceOf: TypeError, message: /event/ });
});
