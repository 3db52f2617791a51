import test, { type ExecutionContext } from 'ava';
import { MemoryBus, type QosAckedEvent } from '../lib/index.js';
import { getJson, postJson, startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';
import { eventually } from './helpers/cluster.js';
import { threeNodes as nodes } from './helpers/memory-cluster.js';

/** Three nodes (a, b, c) of one hub in this process, joined by an in-memory bus. */
const threeNodes = (t: ExecutionContext, extra: Record<string, object> = {}) => nodes(t, { timeoutMs: 200, extra });

test('a send on one node reaches users on the others; counts are summed', async (t) => {
  const { a, b, c } = await threeNodes(t);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7@1&channel=x`);
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=8@1&channel=x`);
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=9@2`);
  t.is(JSON.parse(onB.events[0]!.data).enableCluster, true);
  t.is(await a.plugin.hub.sendByUserId(8, 'bell', { n: 1 }), 1);
  t.deepEqual(JSON.parse((await onC.next('bell')).data), { n: 1 });
  t.is(await a.plugin.hub.sendByTenantId(1, 'tenant', 't'), 2);
  t.is(await c.plugin.hub.sendByChannel('x', 'chan', 'c'), 2);
  t.is(await b.plugin.hub.sendAll('all', 'everyone'), 3);
  t.is(await a.plugin.hub.sendByConnectionId(onB.connectionId, 'direct', 'd'), 1);
  t.is(await a.plugin.hub.sendByUserId(7, 'only-listeners', 1, { listening: true }), 0);
  await onB.next('direct');
  for (const s of [onA, onB, onC]) await s.next('all');
  t.is(onA.named('tenant').length, 0);
  t.is(onB.named('tenant').length + onC.named('tenant').length, 2);
});

test('sends in one tick travel to each peer as one request', async (t) => {
  const { bus, a, c } = await threeNodes(t);
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=1`);
  let requests = 0;
  bus.onRequest = (_from, _to, request) => {
    if (request.type === 'send') requests++;
  };
  const counts = await Promise.all(Array.from({ length: 50 }, (_, i) => a.plugin.hub.sendByUserId(1, 'burst', i)));
  t.deepEqual(counts, Array(50).fill(1));
  t.is(requests, 2, 'one request to b and one to c');
  await onC.until(() => onC.named('burst').length === 50, '50 events');
  t.deepEqual(
    onC.named('burst').map((e) => Number(e.data)),
    [...Array(50).keys()],
  );
});

test('queries merge the cluster: users de-duplicated, counts summed, remote lookups', async (t) => {
  const { a, b, c } = await threeNodes(t);
  await RawStream.open(t, `${a.base}/connect?access-token=1@1&channel=p`);
  await RawStream.open(t, `${b.base}/connect?access-token=1@1&channel=q&listeners=bell`);
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=2@2`);
  const hub = a.plugin.hub;
  t.deepEqual((await hub.getUserIds()).sort(), ['1', '2']);
  t.deepEqual((await hub.getUsers()).map((u) => u.id).sort(), ['1', '2']);
  t.is(await hub.getUserCount(), 2);
  t.is(await hub.getConnectionCount(), 3);
  t.deepEqual((await hub.getChannels()).sort(), ['p', 'q']);
  t.deepEqual((await hub.getTenantIds()).sort(), ['1', '2']);
  t.true(await hub.isOnline(2));
  t.false(await hub.isOnline(3));
  t.is((await hub.getUser(2))?.name, 'User 2');
  t.deepEqual(await hub.getUserIdsListening('bell'), ['1']);
  t.is((await hub.getConnections({ userId: 1 })).length, 2);
  t.is((await hub.getConnectionById(onC.connectionId))?.userId, '2');
  const users = await getJson(`${a.base}/connect/users.json?access-token=admin`);
  t.is(users.body.data.total, 2);
  t.is(users.body.data.partial, false);
});

test('disconnects and durations reach the node holding the connection', async (t) => {
  const { a, b, c } = await threeNodes(t);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=5`);
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=6&reconnectOnClose=1`);
  // One call for an online user (on b) and an offline one: the offline one gets it on connect.
  t.is(await a.plugin.hub.setDurationByUserId([5, 99], 42), 1);
  t.deepEqual(JSON.parse((await onB.next('sse-set-duration')).data), { duration: 42 });
  const late = await RawStream.open(t, `${a.base}/connect?access-token=99`);
  t.deepEqual(JSON.parse((await late.next('sse-set-duration')).data), { duration: 42 });
  t.is(onB.named('sse-set-duration').length, 1, 'the online user is not kept pending');
  t.is(await a.plugin.hub.disconnectByUserId(5), 1);
  await onB.waitEnd();
  t.is(await a.plugin.hub.disconnectByConnectionId(onC.connectionId, { reconnect: true }), 1);
  await onC.waitEnd();
  t.is(JSON.parse((await onC.next('connect-close')).data).reconnect, true);
  t.is(await a.plugin.hub.getConnectionCount(), 1, 'only user 99 is left');
});

test('requests that reach a node without the stream are served for their owner only', async (t) => {
  const { a, b } = await threeNodes(t);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=3`);
  // The browser's request lands on node a, its stream is on b.
  const msg = await postJson(`${a.base}/connect/message/echo.do?connectionId=${onB.connectionId}&access-token=3`, { hi: 1 });
  t.is(msg.status, 200);
  t.deepEqual(msg.body.data.body, { hi: 1 });
  t.is((await postJson(`${a.base}/connect/message/echo.do?connectionId=${onB.connectionId}&access-token=4`, {})).status, 403);
  const added = await postJson(`${a.base}/connect/addListener.do?access-token=3`, { connectionId: onB.connectionId, listener: ['bell'] });
  t.deepEqual(added.body.data, { listener: ['bell'] });
  t.is(await a.plugin.hub.sendAll('bell', 1, { listening: true }), 1);
  await onB.next('bell');
  const left = await postJson(`${a.base}/connect/disconnect.do`, { connectionId: onB.connectionId });
  t.is(left.status, 200);
  await onB.waitEnd();
  t.is((await postJson(`${a.base}/connect/disconnect.do`, { connectionId: 'nope' })).status, 404);
});

test('a node that does not answer costs at most the timeout, is reported, and rejoins', async (t) => {
  const { bus, a, b, c } = await threeNodes(t);
  await RawStream.open(t, `${b.base}/connect?access-token=1`);
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=2`);
  const errors: string[] = [];
  a.plugin.hub.on('peer-error', (e) => errors.push(`${e.nodeId}:${e.operation}`));
  bus.cut('b');
  const started = Date.now();
  t.is(await a.plugin.hub.sendAll('news', 1), 1, 'c still gets it');
  const detailed = await a.plugin.hub.queryDetailed('userIds');
  const elapsed = Date.now() - started;
  t.deepEqual(detailed.value, ['2']);
  t.true(detailed.partial);
  t.deepEqual(detailed.failed, ['b']);
  t.true(elapsed < 2000, `took ${elapsed} ms`);
  t.true(errors.includes('b:send') && errors.includes('b:query'));
  const users = await getJson(`${a.base}/connect/users.json?access-token=admin`);
  t.is(users.body.data.partial, true);
  await onC.next('news');
  bus.heal('b');
  t.deepEqual((await a.plugin.hub.getUserIds()).sort(), ['1', '2']);
});

test('durable: stored on the sending node, delivered on another, acked back to the owner', async (t) => {
  const { a, b } = await threeNodes(t, { a: { qos: { file: ':memory:' } }, b: { qos: { file: ':memory:' } } });
  const qosA = a.plugin.hub.qos;
  // Offline: pending on a; the user connects to b.
  const offline = await qosA.sendByUserId(7, 'offer', { id: 1 });
  const acked = new Promise<QosAckedEvent>((resolve) => a.plugin.hub.once('qos-acked', resolve));
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7`);
  t.is((await onB.next('offer')).id, offline.messageId);
  t.like(await acked, { messageId: offline.messageId, by: 'write', complete: true });
  t.is(qosA.pendingCount({ userId: 7 }), 0);

  // Online elsewhere, with acks: delivered live through b, acked through b's ack.do.
  const tab = await RawStream.open(t, `${b.base}/connect?access-token=8&ack=1`);
  const live = await qosA.sendByUserId(8, 'offer', { id: 2 });
  t.is(live.delivered, 1);
  t.is((await tab.next('offer')).id, live.messageId);
  t.is(qosA.pendingCount({ userId: 8 }), 1);
  const res = await postJson(`${b.base}/connect/ack.do?access-token=8`, { connectionId: tab.connectionId, ids: [live.messageId] });
  t.deepEqual(res.body.data, { acked: 1 });
  t.is(qosA.pendingCount({ userId: 8 }), 0);
  t.is(await qosA.status(live.messageId), undefined);
});

test('a send before the node has started waits for it: the count covers the peers, not a silent 0', async (t) => {
  const bus = new MemoryBus();
  const b = await startPlugin(t, { cluster: { transport: bus.transport('b'), timeoutMs: 200 } });
  await b.plugin.hub.ready();
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7`);
  // A transport that takes a while to start, as an HTTP node does while it binds its port.
  const slow = bus.transport('a');
  const start = slow.start.bind(slow);
  let started = false;
  slow.start = async (handler, self) => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await start(handler, self);
    started = true;
  };
  const a = await startPlugin(t, { cluster: { transport: slow, timeoutMs: 200 } });
  t.false(started, 'the send below must be made before the node started');
  t.is(await a.plugin.hub.sendByUserId(7, 'early', 1), 1);
  t.is((await onB.next('early')).data, '1');
  t.deepEqual(await a.plugin.hub.getUserIds(), ['7']);
});

test('a node whose start failed reports it once, then serves its own connections', async (t) => {
  const bus = new MemoryBus();
  const broken = bus.transport('x');
  let fail!: (err: Error) => void;
  broken.start = () => new Promise((_resolve, reject) => (fail = reject));
  const x = await startPlugin(t, { cluster: { transport: broken, timeoutMs: 200 } });
  const onX = await RawStream.open(t, `${x.base}/connect?access-token=3`);
  // The send waits for the start to settle, then goes on locally.
  const sent = x.plugin.hub.sendByUserId(3, 'after', 1);
  fail(new Error('cannot bind'));
  await t.throwsAsync(x.plugin.hub.ready(), { message: 'cannot bind' });
  t.is(await sent, 1);
  await onX.next('after');
  t.deepEqual(
    x.errors.map((e) => (e as Error).message),
    ['cannot bind'],
  );
});

test('an online time set for an offline user is given on whichever node they reconnect to, once', async (t) => {
  const { a, b, c } = await threeNodes(t);
  t.is(await a.plugin.hub.setDurationByUserId(5, 321), 0, 'offline everywhere: nothing written now');
  // The user comes back on another node than the one asked.
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=5`);
  t.deepEqual(JSON.parse((await onB.next('sse-set-duration')).data), { duration: 321 });
  t.is(b.plugin.hub.getLocalConnection(onB.connectionId)?.sessionDuration, 321);
  // Given once: a later connect elsewhere (a, which was asked, or c) does not get the old value again.
  await onB.close();
  await eventually(async () => !(await a.plugin.hub.isOnline(5)), 'the user to be offline');
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=5`);
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=5`);
  await a.plugin.hub.sendByUserId(5, 'marker', 1);
  await onA.next('marker');
  await onC.next('marker');
  t.is(onA.named('sse-set-duration').length + onC.named('sse-set-duration').length, 0);
});

test('disconnect.do honours the Java parameters: cluster=false looks on this node only, timeout bounds the wait for a late peer', async (t) => {
  const bus = new MemoryBus();
  // A long cluster timeout: only the call's own `timeout` can make it answer early.
  const node = async (id: string) => {
    const started = await startPlugin(t, { cluster: { transport: bus.transport(id), timeoutMs: 20_000 } });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  await node('c');
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=5`);

  const local = await postJson(`${a.base}/connect/disconnect.do?cluster=false`, { connectionId: onB.connectionId });
  t.is(local.status, 404);
  t.like(local.body.data, { count: 0 });
  t.is(local.body.data.timeout, undefined);
  t.is((await b.plugin.hub.getConnectionIds()).length, 1, 'the stream on b is still open');
  t.is((await postJson(`${a.base}/connect/disconnect.do`, { connectionId: onB.connectionId, cluster: 'maybe' })).status, 400);

  bus.stall('c');
  t.teardown(() => bus.heal('c'));
  const started = Date.now();
  const late = await postJson(`${a.base}/connect/disconnect.do`, { connectionId: onB.connectionId, timeout: 100 });
  t.true(Date.now() - started < 10_000, "answered after the call's timeout, not the cluster's");
  t.is(late.status, 200);
  t.like(late.body.data, { connectionId: onB.connectionId, closed: true, count: 1, timeout: true });
  await onB.waitEnd();
  // Unknown here and at b, c late: the 404 says the answer may be incomplete.
  const unknown = await postJson(`${a.base}/connect/disconnect.do`, { connectionId: 'nope', timeout: 100 });
  t.is(unknown.status, 404);
  t.like(unknown.body.data, { count: 0, timeout: true });
});

test('repositoryMessages.json lists the stores of the whole cluster (the Java library), filters by listeners, says when a store is late', async (t) => {
  const bus = new MemoryBus();
  const node = async (id: string) => {
    const started = await startPlugin(t, { qos: { file: ':memory:' }, cluster: { transport: bus.transport(id), timeoutMs: 20_000 } });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  const onA = await a.plugin.hub.qos.sendByUserId(1, 'plain', 'on a');
  const onB = await b.plugin.hub.qos.sendByUserId(2, 'listened', 'on b', { listening: true });
  const list = async (query: string) => (await getJson(`${a.base}/connect/repositoryMessages.json?access-token=admin${query}`)).body.data;
  const all = await list('');
  t.is(all.total, 2);
  t.deepEqual(
    all.list.map((m: { id: string }) => m.id),
    [onA.messageId, onB.messageId],
    'both stores, oldest first',
  );
  t.false(all.partial);
  t.is((await list('&cluster=false')).total, 1);
  const listened = await list('&listeners=listened,other');
  t.deepEqual(
    listened.list.map((m: { id: string }) => m.id),
    [onB.messageId],
  );
  t.is((await list('&userId=1')).total, 1);
  t.is((await getJson(`${a.base}/connect/repositoryMessages.json?access-token=admin&pageNum=11&pageSize=1000`)).status, 400);
  bus.stall('b');
  t.teardown(() => bus.heal('b'));
  const started = Date.now();
  const late = await list('&timeout=100');
  t.true(Date.now() - started < 10_000, "the call's timeout, not the cluster's");
  t.like(late, { total: 1, partial: true, timeout: true });
});
