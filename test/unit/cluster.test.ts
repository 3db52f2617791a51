// Clusters over the in-process MemoryBus, each node a LocalNode with its own Qos (store-less
// or with a SQLite file) and fake responses. No HTTP server.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../../lib/cluster/cluster.js';
import { DurableCluster } from '../../lib/cluster/durable-cluster.js';
import { MemoryBus, MemoryTransport } from '../../lib/cluster/memory-transport.js';
import { mergeQuery } from '../../lib/cluster/merge.js';
import type { ClusterRequest, HelloAnswer, SendItem } from '../../lib/cluster/messages.js';
import type { RequestHandler } from '../../lib/cluster/transport.js';
import type { QueryArgs, QueryAnswer, QueryName } from '../../lib/core/queries.js';
import { SseError, SsePeerError, SsePeerTimeoutError } from '../../lib/core/errors.js';
import { resolveHubOptions } from '../../lib/hub-options.js';
import type { CloseReason, Connection } from '../../lib/local/connection.js';
import { LocalNode } from '../../lib/local/local-node.js';
import { Qos, type QosAckedEvent } from '../../lib/qos/qos.js';
import { openStream, type OpenOptions } from '../helpers/fake-stream.js';
import { eventually } from '../helpers/cluster.js';

interface Node {
  id: string;
  local: LocalNode;
  qos: Qos;
  cluster: Cluster;
  errors: unknown[];
  peerErrors: { nodeId: string; operation: string; error: unknown }[];
  acked: QosAckedEvent[];
  disconnects: { conn: Connection; reason: CloseReason }[];
  open: (options?: OpenOptions) => ReturnType<typeof openStream>;
}

interface NodeOptions {
  store?: boolean;
  timeoutMs?: number;
  /** Instead of `bus.transport(id)`. */
  transport?: MemoryTransport;
}

async function makeNode(t: ExecutionContext, bus: MemoryBus, id: string, options: NodeOptions = {}): Promise<Node> {
  const local = new LocalNode(resolveHubOptions({ clientIdMaxConnections: 100 }, '0.0.0'));
  local.clustered = true;
  const cluster = new Cluster(local, options.transport ?? bus.transport(id), { timeoutMs: options.timeoutMs ?? 1000, group: 'unit' });
  let dir: string | undefined;
  if (options.store === true) dir = mkdtempSync(join(tmpdir(), `sse-unit-cluster-${id}-`));
  const qos = new Qos(local, dir === undefined ? undefined : { file: join(dir, 'qos.db') }, new DurableCluster(cluster));
  const node: Node = { id, local, qos, cluster, errors: [], peerErrors: [], acked: [], disconnects: [], open: (o) => openStream(local, o) };
  for (const emitter of [local, qos, cluster]) emitter.on('error', (err: unknown) => node.errors.push(err));
  cluster.on('peer-error', (info) => node.peerErrors.push(info));
  qos.on('qos-acked', (event) => node.acked.push(event));
  local.on('disconnect', (conn, reason) => node.disconnects.push({ conn, reason }));
  t.teardown(async () => {
    await local.close(0);
    await cluster.close();
    await qos.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  await cluster.start();
  return node;
}

async function threeNodes(t: ExecutionContext, options: Record<string, NodeOptions> = {}): Promise<{ bus: MemoryBus; a: Node; b: Node; c: Node }> {
  const bus = new MemoryBus();
  const a = await makeNode(t, bus, 'a', options.a);
  const b = await makeNode(t, bus, 'b', options.b);
  const c = await makeNode(t, bus, 'c', options.c);
  return { bus, a, b, c };
}

const item = (kind: SendItem['kind'], keys: string[], event: string, data: unknown = 1, listening = false): SendItem => ({
  kind,
  keys,
  event,
  data: JSON.stringify(data),
  listening,
});
const sum = (values: number[]): number => values.reduce((n, v) => n + v, 0);

/**
 * Resolves with `promise`, or rejects once `ms` passed. Its timer is a ref'd one: the bus
 * waits on unref'd timers, which alone would let the test process look idle.
 */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

test("a send reaches the nodes holding its targets; the FanOut carries each peer's count", async (t) => {
  const { a, b, c } = await threeNodes(t);
  const onA = a.open({ user: { id: 1 } });
  const onB = b.open({ user: { id: 1 }, params: { listeners: 'bell', channel: 'x' } });
  const onC1 = c.open({ user: { id: 1 } });
  const onC2 = c.open({ user: { id: 2 } });

  const toUser1 = await a.cluster.send(item('user', ['1'], 'bell', { n: 1 }));
  t.deepEqual(toUser1.failed, []);
  t.deepEqual([...toUser1.values].sort(), [1, 1], 'b and c each wrote it once');
  t.deepEqual(onB.res.dataOf('bell'), [{ n: 1 }]);
  t.deepEqual(onC1.res.dataOf('bell'), [{ n: 1 }]);
  t.deepEqual(onA.res.named('bell'), [], 'the cluster only forwards: the sender delivers locally itself');
  t.deepEqual(onC2.res.named('bell'), []);

  t.is(sum((await a.cluster.send(item('user', ['2'], 'e'))).values), 1);
  t.is(sum((await a.cluster.send(item('user', ['1'], 'bell', 2, true))).values), 1, 'listening is applied by the peer');
  t.is(sum((await a.cluster.send(item('connection', [onC2.conn.id], 'direct'))).values), 1);
  t.is(sum((await a.cluster.send(item('channel', ['x'], 'chan'))).values), 1);
  t.is(sum((await a.cluster.send(item('all', [''], 'all'))).values), 3);
  t.is(sum((await c.cluster.send(item('user', ['1'], 'from-c'))).values), 2, 'a and b');
  t.is(onA.res.named('from-c').length, 1);
  t.is((await onC2.res.event('direct')).data, '1');
  t.is(b.local.stats.eventsSent, 5, 'bell, bell (listening), chan, all, from-c');
  for (const n of [a, b, c]) t.deepEqual(n.errors, []);
});

test('a cluster without peers answers at once with nothing', async (t) => {
  const bus = new MemoryBus();
  const alone = await makeNode(t, bus, 'alone');
  let requests = 0;
  bus.onRequest = () => requests++;
  t.deepEqual(await alone.cluster.send(item('all', [''], 'x')), { values: [], failed: [] });
  t.deepEqual(await alone.cluster.query('userIds', []), { values: [], failed: [] });
  t.is(requests, 0);
});

test('sends in one tick travel to each peer as one request, in order; the next tick makes a new one', async (t) => {
  const { bus, a, c } = await threeNodes(t);
  const onC = c.open({ user: { id: 1 } });
  const requests: { to: string; items: number }[] = [];
  bus.onRequest = (from, to, request: ClusterRequest) => {
    if (from === 'a' && request.type === 'send') requests.push({ to, items: request.items.length });
  };
  const burst = (from: number) => Promise.all(Array.from({ length: 50 }, (_, i) => a.cluster.send(item('user', ['1'], 'burst', from + i))));
  const first = await burst(0);
  t.true(
    first.every((fan) => sum(fan.values) === 1 && fan.failed.length === 0),
    'each send gets its own count back',
  );
  t.deepEqual(
    requests.sort((x, y) => x.to.localeCompare(y.to)),
    [
      { to: 'b', items: 50 },
      { to: 'c', items: 50 },
    ],
  );
  await burst(50);
  t.is(requests.length, 4);
  t.deepEqual(onC.res.dataOf('burst'), [...Array(100).keys()]);
});

test("queries: the peers' answers merge with the local one (users de-duplicated, counts summed)", async (t) => {
  const { a, b, c } = await threeNodes(t);
  a.open({ user: { id: 1, name: 'Ada', accessToken: 'ta' }, params: { channel: 'p' } });
  b.open({ user: { id: 1, name: 'Ada', accessToken: 'tb' }, params: { channel: 'q', listeners: 'bell' } });
  const bob = c.open({ user: { id: 2, name: 'Bob', accessToken: 'tc', tenantId: 't2' } }).conn;
  c.open({ user: { accessToken: 'anon' } });
  const merged = async <N extends QueryName>(name: N, args: QueryArgs<N>): Promise<QueryAnswer<N>> => {
    const fan = await a.cluster.query(name, args);
    t.deepEqual(fan.failed, []);
    t.is(fan.values.length, 2);
    return mergeQuery(name, [a.local.query(name, args), ...fan.values]);
  };
  t.deepEqual((await merged('userIds', [])).sort(), ['1', '2']);
  const users = await merged('users', []);
  t.deepEqual(users.map((u) => u.name).sort(), ['Ada', 'Bob'], 'user 1 is on two nodes, listed once');
  const count: number = await merged('connectionCount', []);
  t.is(count, 4);
  t.deepEqual((await merged('accessTokens', [])).sort(), ['anon', 'ta', 'tb', 'tc']);
  t.deepEqual((await merged('channels', [])).sort(), ['p', 'q']);
  t.deepEqual(await merged('tenantIds', []), ['t2']);
  t.true(await merged('isOnline', ['2']));
  t.false(await merged('isOnline', ['3']));
  t.is((await merged('user', ['2']))?.name, 'Bob');
  t.is(await merged('user', ['3']), null);
  t.deepEqual(await merged('userIdsListening', ['bell', null]), ['1']);
  t.is((await merged('connections', [{ userId: '1' }])).length, 2);
  t.is((await merged('connectionById', [bob.id]))?.userId, '2');
  t.is(await merged('connectionById', ['nope']), null);
  // A peer's malformed answer counts as none.
  t.deepEqual(mergeQuery('userIds', [['1'], null as unknown as string[], ['1', '2']]), ['1', '2']);
  t.is(mergeQuery('connectionCount', [1, 'x' as unknown as number, 2]), 3);
});

test('changeListeners reaches the connection on the peer that holds it', async (t) => {
  const { a, b } = await threeNodes(t);
  const onB = b.open({ user: { id: 1 }, params: { listeners: 'a' } });
  const changes: string[][] = [];
  b.local.on('listeners-change', (change) => changes.push(change.added));
  t.deepEqual(await a.cluster.changeListeners(onB.conn.id, ['bell', 'chat'], true), ['a', 'bell', 'chat']);
  t.deepEqual([...onB.conn.listeners], ['a', 'bell', 'chat']);
  t.deepEqual(changes, [['bell', 'chat']]);
  t.is(sum((await a.cluster.send(item('all', [''], 'bell', 1, true))).values), 1);
  t.deepEqual(await a.cluster.changeListeners(onB.conn.id, ['a', 'bell'], false), ['chat']);
  t.is(sum((await a.cluster.send(item('all', [''], 'bell', 2, true))).values), 0);
  t.deepEqual(onB.res.dataOf('bell'), [1]);
  t.is(await a.cluster.changeListeners('unknown', ['x'], true), undefined);
});

test('disconnect and online time reach the peers holding the connections', async (t) => {
  const { a, b, c } = await threeNodes(t);
  const five = b.open({ user: { id: 5 } });
  const six = c.open({ user: { id: 6 }, params: { reconnectOnClose: 1 } });
  const seven = b.open({ user: { id: 7 } });
  const kicked = await a.cluster.disconnect('user', ['5'], false, 'kick');
  t.deepEqual(kicked.failed, []);
  t.is(sum(kicked.values), 1);
  t.deepEqual(five.res.dataOf('connect-close'), [{ connectionId: five.conn.id, reason: 'kick', reconnect: false }]);
  t.deepEqual(
    b.disconnects.map((d) => [d.conn.id, d.reason]),
    [[five.conn.id, 'kick']],
  );
  t.is(sum((await a.cluster.disconnect('connection', [six.conn.id], true, 'kick')).values), 1);
  t.deepEqual(six.res.dataOf('connect-close'), [{ connectionId: six.conn.id, reason: 'kick', reconnect: true }]);
  t.is(sum((await a.cluster.disconnect('user', ['5', '6'], false, 'kick')).values), 0, 'nothing left to close');

  const durations = await a.cluster.duration('user', ['7', '99'], 42);
  const perKey = [0, 1].map((i) => sum(durations.values.map((v) => v[i]!)));
  t.deepEqual(perKey, [1, 0], 'a count per key, so that the caller knows 99 is offline');
  t.deepEqual(seven.res.dataOf('sse-set-duration'), [{ duration: 42 }]);
  t.is(seven.conn.sessionDuration, 42);
});

test('a peer that does not answer costs at most the timeout, is reported failed, and works again once healed', async (t) => {
  const { bus, a, b, c } = await threeNodes(t, { a: { timeoutMs: 100 } });
  const onB = b.open({ user: { id: 1 } });
  const onC = c.open({ user: { id: 2 } });
  const rpcs: { nodeId: string; operation: string; ok: boolean }[] = [];
  a.cluster.on('peer-rpc', ({ nodeId, operation, ok }) => rpcs.push({ nodeId, operation, ok }));
  // Paused, not yet noticed: a still asks it, and each request times out.
  bus.stall('b');

  const query = await within(2000, a.cluster.query('userIds', []), 'a query with a peer down');
  t.deepEqual(query.failed, ['b']);
  t.deepEqual(query.values.flat().sort(), ['2'], 'the other peers still answer');
  const send = await within(2000, a.cluster.send(item('all', [''], 'news')), 'a send with a peer down');
  t.deepEqual(send.failed, ['b']);
  t.is(sum(send.values), 1);
  t.is((await onC.res.event('news')).data, '1');
  t.deepEqual(
    a.peerErrors.map((e) => [e.nodeId, e.operation, (e.error as { code?: string }).code]),
    [
      ['b', 'query', 'ERR_SSE_PEER_TIMEOUT'],
      ['b', 'send', 'ERR_SSE_PEER_TIMEOUT'],
    ],
  );
  t.true(
    a.peerErrors.every((e) => e.error instanceof SsePeerTimeoutError && e.error.nodeId === 'b'),
    'a timeout is an SseError with the peer',
  );
  t.true(rpcs.some((r) => r.nodeId === 'b' && !r.ok) && rpcs.some((r) => r.nodeId === 'c' && r.ok));

  bus.heal('b');
  const healed = await a.cluster.query('userIds', []);
  t.deepEqual(healed.failed, []);
  t.deepEqual(healed.values.flat().sort(), ['1', '2']);
  t.is(a.peerErrors.length, 2, 'no new error once healed');
  t.deepEqual(onB.res.named('news'), [], 'b handled the held send after its deadline: not written');
});

test('a known peer that is down makes every answer partial, without being asked, until it is back or gone', async (t) => {
  const { bus, a, b, c } = await threeNodes(t);
  b.open({ user: { id: 1 } });
  c.open({ user: { id: 2 } });
  const asked: string[] = [];
  bus.onRequest = (from, to) => {
    if (from === 'a') asked.push(to);
  };
  bus.cut('b');
  t.deepEqual(
    a.cluster.peers().map((p) => p.nodeId),
    ['c'],
  );
  t.deepEqual(
    a.cluster.unreachable().map((p) => p.nodeId),
    ['b'],
  );
  t.deepEqual(
    b.cluster
      .unreachable()
      .map((p) => p.nodeId)
      .sort(),
    ['a', 'c'],
    'cut off, b misses the others too',
  );

  const query = await a.cluster.query('userIds', []);
  t.deepEqual(query.failed, ['b']);
  t.deepEqual(query.values.flat(), ['2']);
  const send = await a.cluster.send(item('all', [''], 'news'));
  t.deepEqual(send.failed, ['b']);
  t.deepEqual(send.values, [1]);
  const disconnect = await a.cluster.disconnect('user', ['9'], false, 'kick');
  t.deepEqual(disconnect.failed, ['b']);
  t.false(asked.includes('b'), 'a peer known to be down is not asked: it would only cost the timeout');
  t.deepEqual(
    a.peerErrors.map((e) => [e.nodeId, e.operation, (e.error as { code?: string }).code]),
    [
      ['b', 'query', 'ERR_SSE_PEER_DOWN'],
      ['b', 'send', 'ERR_SSE_PEER_DOWN'],
      ['b', 'disconnect', 'ERR_SSE_PEER_DOWN'],
    ],
  );
  t.true(
    a.peerErrors.every((e) => e.error instanceof SsePeerError && e.error instanceof SseError),
    'peer errors are SseErrors',
  );
  t.deepEqual((await b.cluster.query('userIds', [])).failed.sort(), ['a', 'c']);

  bus.heal('b');
  t.deepEqual(a.cluster.unreachable(), []);
  const back = await a.cluster.query('userIds', []);
  t.deepEqual(back.failed, []);
  t.deepEqual(back.values.flat().sort(), ['1', '2']);

  // Gone (it left) is not missing: answers are complete without it.
  bus.cut('b');
  await b.cluster.close();
  t.deepEqual(a.cluster.unreachable(), []);
  t.deepEqual((await a.cluster.query('userIds', [])).failed, []);
  t.is(a.peerErrors.length, 3);
});

test('a send that reaches a paused peer after its deadline is not written there; a durable one is, and is acknowledged', async (t) => {
  const { bus, a, b } = await threeNodes(t, { a: { store: true, timeoutMs: 100 } });
  const onB = b.open({ user: { id: 1 } });
  bus.stall('b');
  const ordinary = await within(2000, a.cluster.send(item('user', ['1'], 'ordinary')), 'a send to a paused peer');
  t.deepEqual(ordinary.failed, ['b']);
  t.deepEqual(ordinary.values, [0], 'c answered');
  const durable = await within(2000, a.qos.sendByUserId(1, 'durable', 1), 'a durable send to a paused peer');
  t.is(durable.delivered, 0);
  t.is(a.qos.pendingCount({ userId: 1 }), 1);

  // b resumes and reads both requests, late.
  bus.heal('b');
  t.is((await onB.res.event('durable')).id, durable.messageId, 'durable: written late rather than never');
  await eventually(() => a.qos.pendingCount({ userId: 1 }) === 0, 'the late write acknowledged at its owner');
  t.is(sum((await a.cluster.send(item('user', ['1'], 'marker'))).values), 1);
  await onB.res.event('marker');
  t.deepEqual(onB.res.named('ordinary'), [], 'ordinary: counted 0, so never written');
  for (const n of [a, b]) t.deepEqual(n.errors, []);
});

/** A node whose peers' clocks run 10 s ahead of its own: every send deadline it sets has passed when they read it. */
class BehindTransport extends MemoryTransport {
  override request(peerId: string, request: ClusterRequest, timeoutMs: number): Promise<unknown> {
    const shifted = request.type === 'send' && request.deadline !== undefined ? { ...request, deadline: request.deadline - 10_000 } : request;
    return super.request(peerId, shifted, timeoutMs);
  }
}

test('a peer that answers in time that a send came after its deadline (clocks apart) is reported failed, not counted', async (t) => {
  const bus = new MemoryBus();
  const a = await makeNode(t, bus, 'a', { transport: new BehindTransport(bus, 'a') });
  const b = await makeNode(t, bus, 'b');
  const onB = b.open({ user: { id: 1 } });
  const sent = await a.cluster.send(item('user', ['1'], 'ordinary'));
  t.deepEqual(sent, { values: [], failed: ['b'] });
  t.deepEqual(
    a.peerErrors.map((e) => [e.nodeId, e.operation, (e.error as { code?: string }).code]),
    [['b', 'send', 'ERR_SSE_PEER_LATE']],
  );
  t.deepEqual(onB.res.named('ordinary'), []);
  // Other requests carry no deadline.
  t.deepEqual((await a.cluster.query('userIds', [])).values, [['1']]);
});

test('a send with a recovery-window id that comes after its deadline is still written, and still reported late, not counted', async (t) => {
  const bus = new MemoryBus();
  const a = await makeNode(t, bus, 'a', { transport: new BehindTransport(bus, 'a') });
  const b = await makeNode(t, bus, 'b');
  const onB = b.open({ user: { id: 1 } });
  // A page that stays connected to b would never replay it from the window: b writes it.
  const sent = await a.cluster.send({ ...item('user', ['1'], 'windowed'), wid: 'e1.1700000000000.1.a' });
  t.deepEqual(sent, { values: [], failed: ['b'] });
  t.deepEqual(
    a.peerErrors.map((e) => [e.nodeId, e.operation, (e.error as { code?: string }).code]),
    [['b', 'send', 'ERR_SSE_PEER_LATE']],
  );
  t.is((await onB.res.event('windowed')).data, '1');
});

test('durable: a message owned by A is written on B and acknowledged back to A', async (t) => {
  const { bus, a, b } = await threeNodes(t, { a: { store: true } });
  t.true(a.qos.hasStore);
  t.false(b.qos.hasStore);
  const requests: string[] = [];
  bus.onRequest = (from, to, request) => {
    if (request.type.startsWith('qos-')) requests.push(`${from}>${to}:${request.type}`);
  };

  // Online on B, without acks: forwarded, written, acknowledged by write at A.
  const online = b.open({ user: { id: 7 } });
  const sent = await a.qos.sendByUserId(7, 'offer', { x: 1 });
  t.is(sent.delivered, 1);
  const got = await online.res.event('offer');
  t.is(got.id, sent.messageId);
  t.deepEqual(JSON.parse(got.data), { x: 1 });
  await eventually(() => a.acked.length === 1, 'qos-acked at A');
  t.like(a.acked[0], { messageId: sent.messageId, kind: 'user', key: '7', by: 'write', complete: true, connectionId: online.conn.id });
  t.is(a.qos.pendingCount({ userId: 7 }), 0);
  t.is(await a.qos.status(sent.messageId), undefined);

  // Offline, then connecting to B: B pulls it from A, writes it, acknowledges it.
  const offline = await a.qos.sendByUserId(8, 'offer', 2);
  t.is(offline.delivered, 0);
  t.is(a.qos.pendingCount({ userId: 8 }), 1);
  const late = b.open({ user: { id: 8 } });
  t.is((await late.res.event('offer')).id, offline.messageId);
  await eventually(() => a.acked.length === 2, 'the second qos-acked at A');
  t.like(a.acked[1], { messageId: offline.messageId, by: 'write', connectionId: late.conn.id });
  t.is(await a.qos.status(offline.messageId), undefined);

  // A client that acks: pending at A until B forwards its ack.
  const acking = b.open({ user: { id: 9 }, params: { ack: '1' } });
  const third = await a.qos.sendByUserId(9, 'offer', 3);
  t.is((await acking.res.event('offer')).id, third.messageId);
  t.is(a.qos.pendingCount({ userId: 9 }), 1);
  t.is(await b.qos.ack(acking.conn, [third.messageId]), 1);
  t.like(a.acked[2], { messageId: third.messageId, by: 'ack', complete: true, connectionId: acking.conn.id });
  t.is(a.qos.pendingCount(), 0);

  // Only A owns messages: connections on A never ask the store-less nodes.
  a.open({ user: { id: 10 } });
  await eventually(() => requests.filter((r) => r === 'b>a:qos-pending').length === 3, 'the pulls of B');
  t.false(
    requests.some((r) => r.startsWith('a>')),
    `A asked a peer: ${requests.join(', ')}`,
  );
  t.true(requests.includes('b>a:qos-ack'));
  t.false(
    requests.some((r) => r.endsWith('>b:qos-ack') || r.endsWith('>c:qos-ack')),
    'acks go to the owner only',
  );
  for (const n of [a, b]) t.deepEqual(n.errors, []);
});

/** A peer that does not know `qos-pending-batch`: its handler answers nothing, as an unknown request's. */
class NoBatchTransport extends MemoryTransport {
  override start(handler: RequestHandler, self: HelloAnswer): Promise<void> {
    return super.start((from, request) => (request.type === 'qos-pending-batch' ? Promise.resolve(undefined) : handler(from, request)), self);
  }
}

/** Sends `perUser` durable messages from `owner` to each offline user, then opens a stream for each on `on`, all in one tick. */
async function pullStorm(owner: Node, on: Node, users: number[], perUser: number): Promise<ReturnType<Node['open']>[]> {
  await Promise.all(users.flatMap((u) => Array.from({ length: perUser }, (_, j) => owner.qos.sendByUserId(u, 'offer', { u, j }))));
  return users.map((u) => on.open({ user: { id: u } }));
}

test('durable: the pulls of streams opened in one tick go to each owner as one request', async (t) => {
  const { bus, a, b } = await threeNodes(t, { a: { store: true } });
  const requests: string[] = [];
  bus.onRequest = (from, to, request) => {
    if (request.type.startsWith('qos-')) requests.push(`${from}>${to}:${request.type}`);
  };
  const users = Array.from({ length: 20 }, (_, i) => i + 1);
  const streams = await pullStorm(a, b, users, 2);
  await eventually(() => streams.every((s) => s.res.named('offer').length === 2), 'every stream got its two messages');
  streams.forEach((s, i) =>
    t.deepEqual(s.res.dataOf('offer'), [
      { u: users[i], j: 0 },
      { u: users[i], j: 1 },
    ]),
  );
  t.deepEqual(
    requests.filter((r) => r.includes('pending')),
    ['b>a:qos-pending-batch'],
    'one request for the 20 pulls; the store-less C is not asked',
  );
  await eventually(() => a.qos.pendingCount() === 0, 'all written and acknowledged at A');
  for (const n of [a, b]) t.deepEqual(n.errors, []);
});

test('durable: a peer that answers no batch is asked one pull at a time, and nothing is missed', async (t) => {
  const bus = new MemoryBus();
  const a = await makeNode(t, bus, 'a', { store: true, transport: new NoBatchTransport(bus, 'a') });
  const b = await makeNode(t, bus, 'b');
  const requests: string[] = [];
  bus.onRequest = (from, to, request) => {
    if (request.type.startsWith('qos-pending')) requests.push(`${from}>${to}:${request.type}`);
  };
  const streams = await pullStorm(a, b, [1, 2, 3], 1);
  await eventually(() => streams.every((s) => s.res.named('offer').length === 1), 'every stream got its message');
  t.deepEqual(requests, ['b>a:qos-pending-batch', 'b>a:qos-pending', 'b>a:qos-pending', 'b>a:qos-pending']);
  t.deepEqual(b.peerErrors, []);
});

test('durable: a batch answers within one page of messages; the pulls past it are asked alone', async (t) => {
  const { bus, a, b } = await threeNodes(t, { a: { store: true } });
  const requests: string[] = [];
  bus.onRequest = (from, to, request) => {
    if (request.type.startsWith('qos-pending')) requests.push(`${from}>${to}:${request.type}`);
  };
  // User 1 alone fills a page (10,000, also the queue's cap): the batch answers neither it nor
  // user 2, asked after it.
  await Promise.all(Array.from({ length: 9_999 }, (_, j) => a.qos.sendByUserId(1, 'offer', j)));
  const [big, small] = await pullStorm(a, b, [1, 2], 1);
  await eventually(() => small!.res.named('offer').length === 1 && big!.res.named('offer').length === 10_000, 'both streams served');
  t.deepEqual(small!.res.dataOf('offer'), [{ u: 2, j: 0 }]);
  t.deepEqual(requests, ['b>a:qos-pending-batch', 'b>a:qos-pending', 'b>a:qos-pending']);
  for (const n of [a, b]) t.deepEqual(n.errors, []);
});

test('durable: an ack to an owner that does not answer stays pending there and is reported', async (t) => {
  const { bus, a, b } = await threeNodes(t, { a: { store: true }, b: { timeoutMs: 100 } });
  const acking = b.open({ user: { id: 9 }, params: { ack: '1' } });
  const sent = await a.qos.sendByUserId(9, 'offer', 1);
  await acking.res.event('offer');
  bus.cut('a');
  t.is(await within(2000, b.qos.ack(acking.conn, [sent.messageId]), 'an ack to a peer down'), 0);
  t.deepEqual(
    b.peerErrors.map((e) => [e.nodeId, e.operation]),
    [['a', 'qos-ack']],
  );
  bus.heal('a');
  t.is(a.qos.pendingCount({ userId: 9 }), 1, 'still pending: it is resent on the next connection');
  t.is(await b.qos.ack(acking.conn, [sent.messageId]), 1);
  t.is(a.qos.pendingCount({ userId: 9 }), 0);
});

test('presence: member-state questions that arise while a round is out go to each peer together in the next (churn)', async (t) => {
  // A long timeout: the first round must be held, not timed out, however slow the machine.
  const { bus, a, b, c } = await threeNodes(t, { a: { timeoutMs: 30_000 } });
  // b holds user u1 in room:3 (joined before anything below), c holds nothing.
  const onB = b.open({ user: { id: 'u1' }, params: { channel: 'room:3' } });
  const requests = new Map<string, ClusterRequest[]>();
  bus.onRequest = (_from, to, request) => {
    if (request.type === 'member-state') requests.set(to, [...(requests.get(to) ?? []), request]);
  };
  // The first round is held by both peers (as over a slow link) while 20 more questions arise,
  // each in a tick of its own (as 20 `join.do` calls do).
  bus.stall('b');
  bus.stall('c');
  const answers = [a.cluster.memberStates('room:0', 'u1')];
  for (let i = 1; i <= 20; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    answers.push(a.cluster.memberStates(`room:${i}`, 'u1'));
  }
  t.deepEqual([requests.get('b')?.length, requests.get('c')?.length], [1, 1], 'one round out, the rest waiting for it');
  bus.heal('b');
  bus.heal('c');
  const states = await within(3000, Promise.all(answers), 'the answers');
  t.deepEqual(
    ['b', 'c'].map((id) => requests.get(id)!.map((r) => (r as { items: unknown[] }).items.length)),
    [
      [1, 20],
      [1, 20],
    ],
    'two requests per peer: the first question, then the 20 that came meanwhile',
  );
  t.true(
    states.every((peers) => peers.length === 2),
    'every question answered by both peers',
  );
  const room3 = states[3]!.find((s) => s.nodeId === 'b')!;
  t.is(room3.since, onB.conn.joinedAt('room:3') ?? null, "b's own part, in the right place of the batch");
  t.true(states[4]!.every((s) => s.since === null && s.leftAt === null));
  for (const n of [a, b, c]) t.deepEqual(n.errors, []);
});
