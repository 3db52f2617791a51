// A LAN cluster whose nodes share one Redis store (one tag), against a real redis-server
// (loopback, free port): a durable send stored while the sender held the page's node down is
// not forwarded there, and the page's node reads no peer for it (the store is its own). When
// the sender sees that node back it tells it to read the store again for its streams, so the
// page connected throughout gets the message without reconnecting. Nodes of one process on
// an in-memory bus (a partition is a cut), as in qos-peer-back.test.ts.
import test, { type ExecutionContext } from 'ava';
import { MemoryBus, type MemoryTransport } from '../lib/index.js';
import { eventually } from './helpers/cluster.js';
import { durableSendLoser } from './helpers/memory-cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { eachOnceInOrder, RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('qos-peer-back-redis');
const ci = process.env.CI === 'true' || process.env.CI === '1';
const redisSerial = unavailable === undefined ? test.serial : test.skip;
if (unavailable !== undefined && ci) test('redis-server is available under CI', (t) => t.fail(unavailable));

async function start(t: ExecutionContext, redis: RedisServer, transport: MemoryTransport): Promise<StartedPlugin> {
  const node = await startPlugin(t, { cluster: { transport, timeoutMs: 500 }, qos: { redis: redis.url } });
  await node.plugin.hub.ready();
  return node;
}

redisSerial(
  'a shared Redis store: a send stored while the page’s node was cut off reaches the page connected there throughout, once, after the heal',
  async (t) => {
    const redis = await RedisServer.start(t);
    const bus = new MemoryBus();
    const x = await start(t, redis, bus.transport('x'));
    const p = await start(t, redis, bus.transport('p'));
    t.is(x.plugin.hub.qos.tag, p.plugin.hub.qos.tag, 'one store, one tag');
    await eventually(() => x.plugin.hub.cluster!.peers().length === 1 && p.plugin.hub.cluster!.peers().length === 1, 'x and p up');

    // A partition: the page connects to p, which sees nobody; x stores a message for it meanwhile.
    bus.cut('p');
    await eventually(() => x.plugin.hub.cluster!.peers().length === 0 && p.plugin.hub.cluster!.peers().length === 0, 'both see the cut');
    // ack=1: the page acknowledges nothing here, so the messages stay pending in Redis. One was
    // stored before it connected: its replay writes it, and reading the store again must not.
    const before = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'before the page connected');
    const page = await RawStream.open(t, `${p.base}/connect?access-token=7&ack=1`);
    t.is((await page.next('offer')).id, before.messageId, 'replayed on connect');
    const during = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'during the partition');
    t.is(during.delivered, 0, 'not written anywhere: p is down in x’s view');

    // The heal: the page, still connected to p, gets it without reconnecting.
    bus.heal('p');
    t.is((await page.next('offer', 5000)).id, during.messageId, 'delivered to the page connected throughout');

    await eventually(() => x.plugin.hub.cluster!.peers().length === 1, 'x sees p up');
    await eachOnceInOrder(t, page, 'offer', [before.messageId, during.messageId], () => x.plugin.hub.qos.sendByUserId(7, 'marker', 'end'));
    t.deepEqual([...x.errors, ...p.errors], []);
  },
);

redisSerial(
  'a shared Redis store: a forward lost on its way to the page’s node, both staying up, reaches the page connected there, once',
  async (t) => {
    const redis = await RedisServer.start(t);
    const bus = new MemoryBus();
    const pTransport = bus.transport('p');
    const loser = durableSendLoser(pTransport);
    const x = await start(t, redis, bus.transport('x'));
    const p = await start(t, redis, pTransport);
    await eventually(() => x.plugin.hub.cluster!.peers().length === 1 && p.plugin.hub.cluster!.peers().length === 1, 'x and p up');

    // Its replay on connect is over before the lost send (it wrote the older message): only a read again brings that one.
    const before = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'before the page connected');
    const page = await RawStream.open(t, `${p.base}/connect?access-token=7&ack=1`);
    t.is((await page.next('offer')).id, before.messageId, 'replayed on connect');
    // p never answers the next peer's send carrying a durable message: its sender times out.
    const lost = loser.loseNext();
    const sent = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'lost on the way');
    await lost;
    t.is(sent.delivered, 0, "p's part timed out");
    t.is((await page.next('offer', 5000)).id, sent.messageId, 'delivered to the page connected throughout');
    await eachOnceInOrder(t, page, 'offer', [before.messageId, sent.messageId], () => x.plugin.hub.qos.sendByUserId(7, 'marker', 'end'));
  },
);
