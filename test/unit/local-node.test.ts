// The local node alone: index, delivery, caps, lifetime, heartbeats, queries, online time and
// shutdown, over fake responses (no HTTP server).
import test, { type ExecutionContext } from 'ava';
import { SseClosedError, SseTooManyConnectionsError } from '../../lib/core/errors.js';
import { encodeFrame } from '../../lib/core/frame.js';
import type { QueryAnswer } from '../../lib/core/queries.js';
import type { SendTargetKind } from '../../lib/core/targets.js';
import { hashToken } from '../../lib/core/token-hash.js';
import { resolveHubOptions, type HubOptions } from '../../lib/hub-options.js';
import type { CloseReason, Connection } from '../../lib/local/connection.js';
import { connectFinishTemplate } from '../../lib/local/connect-finish.js';
import { newConnectionId } from '../../lib/local/connection-id.js';
import { KeyIndex } from '../../lib/local/key-index.js';
import { LocalNode, type ListenersChange } from '../../lib/local/local-node.js';
import { directSocketOf } from '../../lib/local/write-path.js';
import { asServerResponse, FakeResponse, openStream, type OpenOptions } from '../helpers/fake-stream.js';
import { eventually } from '../helpers/cluster.js';

interface Harness {
  node: LocalNode;
  /** Errors the node reported. */
  errors: unknown[];
  disconnects: { conn: Connection; reason: CloseReason }[];
  open: (options?: OpenOptions) => ReturnType<typeof openStream>;
}

function makeNode(t: ExecutionContext, options: HubOptions = {}): Harness {
  const node = new LocalNode(resolveHubOptions(options, '0.0.0'));
  const errors: unknown[] = [];
  const disconnects: Harness['disconnects'] = [];
  node.on('error', (err) => errors.push(err));
  node.on('disconnect', (conn, reason) => disconnects.push({ conn, reason }));
  t.teardown(() => node.close(0));
  return { node, errors, disconnects, open: (o) => openStream(node, o) };
}

const user = (id: string | number, extra: Record<string, unknown> = {}) => ({ id, accessToken: `tok-${id}`, ...extra });
const ids = (conns: Iterable<Connection>): string[] => [...conns].map((c) => c.id).sort();
const frame = (event: string, data: unknown = 1) => encodeFrame({ event, data });

test('the fake response takes the res.write path: the direct socket path does not apply to it', (t) => {
  t.is(directSocketOf(asServerResponse(new FakeResponse())), undefined);
});

test('open writes the head and connect-finish, tunes the socket, and emits connect once indexed', (t) => {
  const { node } = makeNode(t, { name: 'hr', reconnectTimeMs: 1234, heartbeatMs: 7000, version: '9.9.9' });
  let seenInIndex: boolean | undefined;
  node.on('connect', (conn) => {
    seenInIndex = node.get(conn.id) === conn && node.query('userIds', []).includes('1');
  });
  const { conn, res, req } = openStream(node, { user: user(1) });
  t.is(res.statusCode, 200);
  t.is(res.headers['Content-Type'], 'text/event-stream; charset=utf-8');
  t.is(res.headers['Cache-Control'], 'no-cache, no-transform');
  // A socket with no listener to inherit from (a fake here) is given keepalive itself.
  t.deepEqual(req.socket.calls, [
    ['setNoDelay', true],
    ['setTimeout', 0],
    ['setKeepAlive', true],
  ]);
  t.true(seenInIndex);
  t.is(res.events.length, 1);
  const finish = res.events[0]!;
  t.is(finish.event, 'connect-finish');
  t.is(finish.retry, 1234);
  t.like(JSON.parse(finish.data), {
    connectionId: conn.id,
    reconnectTime: 1234,
    name: 'hr',
    enableCluster: false,
    version: '9.9.9',
    heartbeatMs: 7000,
    expiresAt: conn.expiresAt,
  });
  t.regex(conn.id, /^[\w-]{24}$/);
  t.is(node.size, 1);
  t.is(node.stats.connects, 1);
});

test('connection ids: 24 base64url characters (144 bits), distinct across refills of the random pool', (t) => {
  const seen = new Set<string>();
  // 1,000 ids span several refills of the 256-id pool.
  for (let i = 0; i < 1000; i++) {
    const id = newConnectionId();
    t.regex(id, /^[\w-]{24}$/);
    seen.add(id);
  }
  t.is(seen.size, 1000);
});

test('connect-finish from its template is byte for byte what encodeFrame writes, clustered or not', (t) => {
  const options = { reconnectTimeMs: 1234, name: 'hr', version: 'ünï "9"\n', heartbeatMs: 7000 };
  for (const [clustered, epoch, recovered] of [
    [false, null, false],
    [true, 'mivb4kq0x3', true],
  ] as const) {
    const frame = connectFinishTemplate({ ...options, clustered, epoch })(
      'AbC-_0123456789abcdefghij',
      1_700_000_000_123,
      1_700_000_060_456,
      undefined,
      recovered,
    );
    const expected = encodeFrame({
      event: 'connect-finish',
      retry: 1234,
      data: {
        connectionId: 'AbC-_0123456789abcdefghij',
        serverTime: 1_700_000_000_123,
        reconnectTime: 1234,
        name: 'hr',
        enableCluster: clustered,
        version: options.version,
        heartbeatMs: 7000,
        expiresAt: 1_700_000_060_456,
        channels: [],
        recovered,
        epoch,
      },
    });
    t.is(frame, expected.toString());
    t.true(Buffer.from(frame, 'utf8').equals(expected));
  }
  const { node } = makeNode(t);
  node.clustered = true;
  const { res } = openStream(node, { user: user(1) });
  t.like(JSON.parse(res.events[0]!.data), { enableCluster: true });
});

test('KeyIndex: one value held bare, a Set from the second; oldest first through every change', (t) => {
  const index = new KeyIndex<{ n: number }>();
  const [a, b, c] = [{ n: 1 }, { n: 2 }, { n: 3 }];
  const ns = (key: string): number[] => index.list(key).map((v) => v.n);
  index.add('k', a);
  index.add('k', a);
  t.deepEqual(ns('k'), [1]);
  t.deepEqual(
    [...index.get('k')!].map((v) => v.n),
    [1],
  );
  index.add('k', b);
  index.add('k', c);
  t.is(index.count('k'), 3);
  index.delete('k', b);
  t.deepEqual(ns('k'), [1, 3]);
  index.delete('k', a);
  t.deepEqual(ns('k'), [3]);
  t.is(index.count('k'), 1);
  index.add('k', a);
  t.deepEqual(ns('k'), [3, 1]);
  index.delete('k', b);
  t.deepEqual(ns('k'), [3, 1]);
  index.delete('k', c);
  index.delete('k', a);
  t.false(index.has('k'));
  t.is(index.size, 0);
  t.is(index.get('k'), undefined);
  t.is(index.count('k'), 0);
  index.delete('k', a);
  index.add(undefined, a);
  t.is(index.size, 0);
});

test('the index: each target kind reaches its connections, each once, anonymous ones under no shared key', (t) => {
  const { node, open } = makeNode(t);
  const a = open({ user: { id: 1, accessToken: 'ta', tenantId: 't1' }, params: { channel: 'c1' } }).conn;
  const b = open({ user: { id: 1, accessToken: 'tb', tenantId: 't2' }, params: { channel: 'c2' } }).conn;
  const c = open({ user: { id: 2n, accessToken: 'tc', tenantId: 't1' }, params: { channel: 'c1' } }).conn;
  const anon1 = open({ user: {}, params: { channel: 'c2' } }).conn;
  const anon2 = open({ user: { id: '', accessToken: '', tenantId: '' } }).conn;
  const reach = (kind: SendTargetKind, keys: string[]) => ids(node.targets(kind, keys));

  t.deepEqual(reach('user', ['1']), ids([a, b]));
  t.deepEqual(reach('user', ['2']), ids([c]), 'a bigint id is filed under its string form');
  t.deepEqual(reach('user', ['1', '2', '1']), ids([a, b, c]));
  t.deepEqual(reach('token', ['ta', 'tc', 'ta']), ids([a, c]));
  t.deepEqual(reach('tenant', ['t1']), ids([a, c]));
  t.deepEqual(reach('channel', ['c2']), ids([b, anon1]));
  t.deepEqual(reach('channel', ['c1', 'c2']), ids([a, b, c, anon1]));
  t.deepEqual(reach('connection', [b.id, anon2.id, 'unknown']), ids([b, anon2]));
  t.deepEqual(reach('all', ['']), ids([a, b, c, anon1, anon2]));
  for (const kind of ['user', 'token', 'tenant', 'channel'] as const) {
    t.deepEqual(reach(kind, ['']), [], `no ${kind} "" shared by anonymous connections`);
  }
  t.deepEqual(node.query('userIds', []).sort(), ['1', '2']);
  t.deepEqual(node.query('accessTokens', []).sort(), ['ta', 'tb', 'tc']);

  // Targeted twice, written once.
  const before = a.eventsWritten;
  t.is(node.deliver('user', ['1', '1'], frame('x'), 'x', false), 2);
  t.is(node.deliver('connection', [a.id, a.id], frame('x'), 'x', false), 1);
  t.is(a.eventsWritten, before + 2);
});

test('deliver counts what it wrote, honours listening, and keeps the running totals', (t) => {
  const { node, open } = makeNode(t);
  const listening = open({ user: user(1), params: { listeners: 'bell,chat' } });
  const other = open({ user: user(2), params: { listeners: 'chat' } });
  const bell = frame('bell', { n: 1 });
  const written: string[] = [];
  t.is(node.deliver('all', [''], bell, 'bell', true, { written: (conn) => written.push(conn.id) }), 1);
  t.deepEqual(written, [listening.conn.id]);
  t.is(node.deliver('all', [''], bell, 'bell', false), 2);
  t.is(node.deliver('user', ['3'], bell, 'bell', false), 0);
  t.deepEqual(listening.res.dataOf('bell'), [{ n: 1 }, { n: 1 }]);
  t.deepEqual(other.res.dataOf('bell'), [{ n: 1 }]);
  t.like(node.stats, { eventsSent: 3, eventsFailed: 0, bytesSent: 3 * bell.length });
  t.is(listening.conn.eventsWritten, 1 + 2, 'connect-finish and two events');
  // A connection the caller takes in hand (durable delivery: a replay runs) is reached, not written.
  written.length = 0;
  const hooks = { leave: (conn: { id: string }) => conn.id === other.conn.id, written: (conn: { id: string }) => written.push(conn.id) };
  t.is(node.deliver('all', [''], bell, 'bell', false, hooks), 2);
  t.deepEqual(written, [listening.conn.id]);
  t.deepEqual(other.res.dataOf('bell'), [{ n: 1 }], 'left to the caller');
  t.like(node.stats, { eventsSent: 4, bytesSent: 4 * bell.length }, 'only what was written');
});

test('a stream that listens to nothing shares a read-only empty set; its first listener gives it its own', (t) => {
  const { node, open } = makeNode(t);
  const a = open({ user: user(1) });
  const b = open({ user: user(2) });
  t.is(a.conn.listeners.size, 0);
  t.throws(() => (a.conn.listeners as Set<string>).add('x'), { instanceOf: TypeError });
  t.deepEqual(node.changeListeners(a.conn, ['bell'], true), ['bell']);
  t.deepEqual([...a.conn.listeners], ['bell']);
  t.is(b.conn.listeners.size, 0, 'the other stream still listens to nothing');
  t.is(node.deliver('all', [''], frame('bell'), 'bell', true), 1);
  t.deepEqual(node.changeListeners(a.conn, ['bell'], false), []);
  t.is(node.deliver('all', [''], frame('bell'), 'bell', true), 0);
  t.deepEqual(a.conn.toInfo().listeners, []);
});

test('a reader past writeBufferLimit is closed as slow: the write fails and counts as failed', async (t) => {
  const { node, open, disconnects } = makeNode(t, { writeBufferLimit: 1024 });
  const fast = open({ user: user(1) });
  const slow = open({ user: user(2), res: new FakeResponse().slow() });
  t.true(slow.conn.bufferedAmount > 0, 'connect-finish is still held by the slow reader');
  const big = frame('big', 'x'.repeat(2048));
  t.is(node.deliver('all', [''], big, 'big', false), 1);
  t.true(slow.conn.closed);
  t.is(slow.conn.closeReason, 'slow');
  t.true(slow.res.destroyed, 'a slow reader is cut off, not sent a goodbye it cannot read');
  t.deepEqual(
    disconnects.map((d) => d.reason),
    ['slow'],
  );
  t.like(node.stats, { eventsSent: 1, eventsFailed: 1, bytesSent: big.length, slowCloses: 1, disconnects: 1 });
  t.is(node.get(slow.conn.id), undefined);
  t.is((await fast.res.event('big')).data.length, 2048);
  t.is(node.deliver('all', [''], big, 'big', false), 1, 'the slow one is gone from the index');
});

test('a backlog under writeBufferLimit keeps a slow reader open; whenDrained resolves once it has read it all', async (t) => {
  const { node, open } = makeNode(t, { writeBufferLimit: 64 * 1024 });
  const s = open({ user: user(1), res: new FakeResponse().slow() });
  for (let i = 0; i < 3; i++) t.is(node.deliver('user', ['1'], frame('n', i), 'n', false), 1);
  t.false(s.conn.closed);
  t.deepEqual(s.res.events, [], 'nothing read yet');
  const drained = s.conn.whenDrained();
  s.res.resume();
  await drained;
  t.deepEqual(s.res.dataOf('n'), [0, 1, 2]);
  t.is(s.conn.bufferedAmount, 0);
});

test('maxConnections refuses the next stream before writing anything', (t) => {
  const { node, open } = makeNode(t, { maxConnections: 2 });
  open({ user: user(1) });
  const second = open({ user: user(2) });
  const res = new FakeResponse();
  const error = t.throws(() => open({ user: user(3), res }), { instanceOf: SseTooManyConnectionsError });
  t.is(error?.code, 'ERR_SSE_TOO_MANY_CONNECTIONS');
  t.is(error?.status, 429);
  t.false(res.headersSent);
  t.is(res.chunks.length, 0);
  t.is(node.size, 2);
  t.is(node.stats.connects, 2);
  second.conn.close('kick');
  t.notThrows(() => open({ user: user(3) }), 'a slot freed by a close is usable again');
});

test('maxConnectionsPerUser refuses a user over the cap, before writing, and not other users', async (t) => {
  const { node, open } = makeNode(t, { maxConnectionsPerUser: 2 });
  open({ user: user(1), params: { clientId: 'a' } });
  const second = open({ user: user(1), params: { clientId: 'b' } });
  const res = new FakeResponse();
  t.throws(() => open({ user: user(1), params: { clientId: 'c' }, res }), { instanceOf: SseTooManyConnectionsError });
  t.false(res.headersSent);
  t.is(res.chunks.length, 0);
  t.notThrows(() => open({ user: user(2) }));
  t.notThrows(() => open({ user: {} }), 'anonymous streams are not a user');
  t.notThrows(() => open({ user: {} }));
  t.is(node.query('connections', [{ userId: '1' }]).length, 2);
  second.res.destroy(); // the client leaves
  await eventually(() => second.conn.closed, 'the lost stream');
  t.notThrows(() => open({ user: user(1), params: { clientId: 'c' } }));
});

test('clientIdMaxConnections evicts the oldest stream of the same browser only', async (t) => {
  const { node, open, disconnects } = makeNode(t, { clientIdMaxConnections: 2 });
  const tab1 = open({ user: user(1), params: { clientId: 'browser' } });
  const otherBrowser = open({ user: user(1), params: { clientId: 'other' } });
  const otherSite = open({ user: user(1), params: { clientId: 'browser' }, request: { domain: 'other.test' } });
  const anonymous = [1, 2, 3].map(() => open({ user: {}, params: { clientId: 'browser' } }));
  const tab2 = open({ user: user(1), params: { clientId: 'browser' } });
  t.false(tab1.conn.closed, 'two tabs of one browser are allowed');
  const tab3 = open({ user: user(1), params: { clientId: 'browser' } });
  t.true(tab1.conn.closed);
  t.is(tab1.conn.closeReason, 'evicted');
  t.deepEqual(tab1.res.dataOf('connect-close'), [{ connectionId: tab1.conn.id, reason: 'evicted', reconnect: false }]);
  await tab1.res.ended();
  t.deepEqual(
    disconnects.map((d) => [d.conn.id, d.reason]),
    [[tab1.conn.id, 'evicted']],
  );
  for (const s of [tab2, tab3, otherBrowser, otherSite, ...anonymous]) t.false(s.conn.closed);
  t.is(node.size, 7);
});

test('a stream is closed as expired after its lifetime, told to reconnect; other streams stay', async (t) => {
  const { node, open, disconnects } = makeNode(t, { heartbeatMs: 20, maxLifetimeMs: 60_000, minLifetimeMs: 100, lifetimeJitter: 0 });
  const short = open({ user: user(1), params: { keepaliveTime: 100, reconnectOnClose: 1 } });
  const long = open({ user: user(2) });
  t.true(short.conn.expiresAt - short.conn.createdAt <= 100 && short.conn.expiresAt - short.conn.createdAt >= 95);
  t.true(long.conn.expiresAt - long.conn.createdAt >= 59_990);
  await eventually(() => disconnects.length > 0, 'the expiry');
  t.true(Date.now() >= short.conn.expiresAt, 'not before its time');
  t.deepEqual(
    disconnects.map((d) => [d.conn.id, d.reason]),
    [[short.conn.id, 'expired']],
  );
  t.deepEqual(short.res.dataOf('connect-close'), [{ connectionId: short.conn.id, reason: 'expired', reconnect: true }]);
  await short.res.ended();
  t.false(long.conn.closed);
  t.is(node.size, 1);
});

test('lifetimes: a client may shorten its lifetime down to minLifetimeMs, never lengthen it; jitter 0 is exact', (t) => {
  const { open } = makeNode(t, { maxLifetimeMs: 60_000, minLifetimeMs: 5000, lifetimeJitter: 0 });
  const lifetime = (keepaliveTime?: number): number => {
    const { conn, res } = open({ user: user(1), params: keepaliveTime === undefined ? {} : { keepaliveTime } });
    t.is(JSON.parse(res.events[0]!.data).expiresAt, conn.expiresAt);
    return conn.expiresAt - conn.createdAt;
  };
  const near = (actual: number, expected: number) => t.true(actual <= expected && actual >= expected - 20, `${actual} vs ${expected}`);
  near(lifetime(), 60_000);
  near(lifetime(10), 5000);
  near(lifetime(20_000), 20_000);
  near(lifetime(600_000), 60_000);
});

test('jitter takes a random fraction off the lifetime, never more than lifetimeJitter', (t) => {
  const { open } = makeNode(t, { maxLifetimeMs: 100_000, lifetimeJitter: 0.5, clientIdMaxConnections: 100 });
  const lifetimes = Array.from({ length: 40 }, (_, i) => {
    const { conn } = open({ user: user(i) });
    return conn.expiresAt - conn.createdAt;
  });
  t.true(
    lifetimes.every((ms) => ms >= 50_000 - 20 && ms <= 100_000),
    String(lifetimes),
  );
  t.true(new Set(lifetimes).size > 1, 'not all the same');
});

test('heartbeats are comments written every heartbeatMs; they are not counted as events', async (t) => {
  const { node, open } = makeNode(t, { heartbeatMs: 20 });
  const s = open({ user: user(1) });
  await s.res.until(() => s.res.comments >= 3, 'three heartbeats');
  t.is(s.conn.eventsWritten, 1, 'only connect-finish');
  t.is(node.stats.eventsSent, 0);
  t.true(s.res.text().includes(':\n\n'));
  s.conn.close('kick');
  const comments = s.res.comments;
  const t2 = open({ user: user(2) });
  await t2.res.until(() => t2.res.comments >= 2, 'heartbeats after a restart of the timer');
  t.is(s.res.comments, comments, 'a closed stream gets no heartbeat');
});

test('disconnect events fire after the connection left every index', async (t) => {
  const { node, open } = makeNode(t);
  const seen: { reason: CloseReason; inIndex: boolean; reachable: number; userIds: string[]; size: number }[] = [];
  node.on('disconnect', (conn, reason) => {
    seen.push({
      reason,
      inIndex: node.get(conn.id) !== undefined,
      reachable: [...node.targets('user', [conn.userId!])].length + [...node.targets('channel', ['c'])].filter((c) => c === conn).length,
      userIds: node.query('userIds', []),
      size: node.size,
    });
  });
  const kicked = open({ user: user(1), params: { channel: 'c' } });
  const left = open({ user: user(2), params: { channel: 'c' } });
  const client = open({ user: user(3), params: { channel: 'c' } });
  t.is(node.disconnect('user', ['1'], false, 'kick'), 1);
  t.deepEqual(kicked.res.dataOf('connect-close'), [{ connectionId: kicked.conn.id, reason: 'kick', reconnect: false }]);
  left.res.destroy(); // the client went away: 'close' follows on the next tick
  await eventually(() => seen.length === 2, 'the lost stream');
  t.is(node.disconnect('connection', [client.conn.id], true, 'client'), 1);
  t.deepEqual(client.res.named('connect-close'), [], 'a client that said it left is not told why');
  t.deepEqual(seen, [
    { reason: 'kick', inIndex: false, reachable: 0, userIds: ['2', '3'], size: 2 },
    { reason: 'client', inIndex: false, reachable: 0, userIds: ['3'], size: 1 },
    { reason: 'client', inIndex: false, reachable: 0, userIds: [], size: 0 },
  ]);
  t.is(node.stats.disconnects, 3);
  t.is(node.disconnect('user', ['1', '2', '3'], false, 'kick'), 0, 'nothing left to close');
});

test('a listener that throws is reported as error, not thrown into the caller', (t) => {
  const { node, open, errors } = makeNode(t);
  const boom = new Error('listener failed');
  node.on('connect', () => {
    throw boom;
  });
  const { conn } = open({ user: user(1) });
  t.false(conn.closed);
  t.deepEqual(errors, [boom]);
});

test('queries answer from the connections, typed by the query map', (t) => {
  const { node, open } = makeNode(t);
  const a = open({
    user: { id: 1, name: 'Ada', accessToken: 'ta', tenantId: 't1' },
    params: { channel: 'c1', listeners: 'bell', clientId: 'x' },
  }).conn;
  open({ user: { id: 1, name: 'Ada again', accessToken: 'tb', tenantId: 't1' }, params: { channel: 'c2' } });
  const c = open({ user: { id: 2, name: 'Bob', accessToken: 'tc', tenantId: 't2' }, params: { listeners: 'bell' } }).conn;
  open({ user: { accessToken: 'td' }, params: { listeners: 'bell' } });

  const userIds: string[] = node.query('userIds', []);
  t.deepEqual(userIds.sort(), ['1', '2']);
  t.deepEqual(
    node
      .query('users', [])
      .map((u) => u.name)
      .sort(),
    ['Ada', 'Bob'],
    'one user per id: its first connection',
  );
  t.deepEqual(node.query('accessTokens', []).sort(), ['ta', 'tb', 'tc', 'td']);
  t.deepEqual(node.query('tenantIds', []).sort(), ['t1', 't2']);
  t.deepEqual(node.query('channels', []).sort(), ['c1', 'c2']);
  const count: number = node.query('connectionCount', []);
  t.is(count, 4);
  t.true(node.query('isOnline', ['2']));
  t.false(node.query('isOnline', ['3']));
  t.is(node.query('user', ['2'])?.name, 'Bob');
  t.is(node.query('user', ['3']), null);
  t.deepEqual(node.query('userIdsListening', ['bell', null]).sort(), ['1', '2'], 'anonymous listeners are not users');
  t.deepEqual(node.query('userIdsListening', ['bell', 't2']), ['2']);
  t.deepEqual(node.query('userIdsListening', ['chat', null]), []);
  t.deepEqual(
    node
      .query('connections', [{ userId: 1 }])
      .map((i) => i.channel)
      .sort(),
    ['c1', 'c2'],
  );
  t.deepEqual(
    node.query('connections', [{ userId: 1, channel: 'c2' }]).map((i) => i.userId),
    ['1'],
  );
  t.deepEqual(
    node.query('connections', [{ tenantId: 't1', listening: 'bell' }]).map((i) => i.id),
    [a.id],
  );
  t.deepEqual(node.query('connections', [{ listening: 'bell' }]).length, 3);
  t.deepEqual(
    node.query('connections', [{ clientId: 'x' }]).map((i) => i.id),
    [a.id],
  );
  t.deepEqual(
    node.query('connections', [{ accessToken: 'tc' }]).map((i) => i.id),
    [c.id],
  );
  t.is(node.query('connections', [{}]).length, 4);
  const info: QueryAnswer<'connectionById'> = node.query('connectionById', [c.id]);
  t.like(info, { id: c.id, userId: '2', tenantId: 't2', listeners: ['bell'], ip: '127.0.0.1', domain: 'example.test' });
  t.is(info!.accessTokenHash, hashToken('tc'));
  t.is(node.query('connectionById', ['nope']), null);

  // The query map types the arguments (checked by tsc; never run).
  const typeChecks = (): void => {
    // @ts-expect-error isOnline takes a user id
    node.query('isOnline', []);
    // @ts-expect-error userIds takes no argument
    node.query('userIds', ['1']);
    // @ts-expect-error not a query
    node.query('nope', []);
    // @ts-expect-error the answer of connectionCount is a number
    const wrong: string = node.query('connectionCount', []);
    void wrong;
  };
  void typeChecks;
});

test('changeListeners adds and removes events, emits listeners-change, and re-indexes for listening sends', (t) => {
  const { node, open } = makeNode(t);
  const { conn, res } = open({ user: user(1), params: { listeners: 'a' } });
  const changes: ListenersChange[] = [];
  node.on('listeners-change', (change) => changes.push(change));
  t.is(node.deliver('all', [''], frame('b'), 'b', true), 0);
  t.deepEqual(node.changeListeners(conn, ['b', 'a'], true), ['a', 'b']);
  t.deepEqual(
    changes.map((c) => [c.before, c.after, c.added]),
    [[['a'], ['a', 'b'], ['b']]],
  );
  t.deepEqual(node.query('userIdsListening', ['b', null]), ['1']);
  t.is(node.deliver('all', [''], frame('b'), 'b', true), 1);
  t.deepEqual(node.changeListeners(conn, ['a'], false), ['b']);
  t.deepEqual(node.query('userIdsListening', ['a', null]), []);
  t.is(node.query('connections', [{ listening: 'a' }]).length, 0);
  t.is(node.deliver('all', [''], frame('a'), 'a', true), 0);
  t.deepEqual(node.changeListeners(conn, ['zzz'], false), ['b']);
  t.is(changes.length, 2, 'no event when nothing changed');
  t.is(res.named('b').length, 1);
});

test('setDuration writes sse-set-duration to the streams reached; keepDuration waits for the next open, once', (t) => {
  const { node, open } = makeNode(t, { clientIdMaxConnections: 10 });
  const online = open({ user: user(1) });
  t.is(node.setDuration('user', ['1', '2'], 42), 1);
  t.deepEqual(online.res.dataOf('sse-set-duration'), [{ duration: 42 }]);
  t.is(online.conn.sessionDuration, 42);
  t.is(node.query('connectionById', [online.conn.id])?.sessionDuration, 42);
  t.is(node.setDuration('connection', [online.conn.id], 43), 1);

  node.keepDuration('user', '9', 7);
  node.keepDuration('token', 'tok-x', 8);
  const first = open({ user: user(9) });
  t.deepEqual(
    first.res.events.map((e) => e.event),
    ['connect-finish', 'sse-set-duration'],
  );
  t.deepEqual(first.res.dataOf('sse-set-duration'), [{ duration: 7 }]);
  t.is(first.conn.sessionDuration, 7);
  const second = open({ user: user(9) });
  t.deepEqual(second.res.named('sse-set-duration'), [], 'a kept value is given once');
  const byToken = open({ user: { accessToken: 'tok-x' } });
  t.deepEqual(byToken.res.dataOf('sse-set-duration'), [{ duration: 8 }]);
  t.deepEqual(open({ user: user(10) }).res.named('sse-set-duration'), []);
});

test('close tells every client to come back after a spread retry, waits for the frames, and refuses new streams', async (t) => {
  const { node, open, disconnects } = makeNode(t, { reconnectTimeMs: 1000 });
  const rc = { reconnectOnClose: '1' };
  const streams = [open({ user: user(1), params: rc }), open({ user: user(2), params: rc }), open({ user: {}, params: rc })];
  await node.close(1000);
  t.true(node.closed);
  for (const { conn, res } of streams) {
    t.true(res.writableFinished, 'close waited for the last frame to be written');
    const close = res.named('connect-close');
    t.is(close.length, 1);
    t.deepEqual(JSON.parse(close[0]!.data), { connectionId: conn.id, reason: 'shutdown', reconnect: true });
    const retry = close[0]!.retry!;
    t.true(Number.isInteger(retry) && retry >= 250 && retry <= 1250, `retry ${retry}`);
  }
  t.deepEqual(
    disconnects.map((d) => d.reason),
    ['shutdown', 'shutdown', 'shutdown'],
  );
  t.is(node.size, 0);
  t.throws(() => open({ user: user(3) }), { instanceOf: SseClosedError });
  await t.notThrowsAsync(node.close(0), 'a second close is a no-op');
});

test('close does not wait longer than drainMs for a client that does not read', async (t) => {
  const { node, open } = makeNode(t);
  const stuck = open({ user: user(1), params: { reconnectOnClose: 'true' }, res: new FakeResponse().slow() });
  await node.close(30);
  t.true(stuck.conn.closed);
  t.false(stuck.res.writableFinished, 'its frames are still held');
  stuck.res.resume();
  await stuck.res.ended();
  t.deepEqual(stuck.res.dataOf('connect-close'), [{ connectionId: stuck.conn.id, reason: 'shutdown', reconnect: true }]);
});

test('a close that wants the client back sends connect-close only to a client that declared reconnectOnClose', async (t) => {
  const { node, open } = makeNode(t, { heartbeatMs: 20, maxLifetimeMs: 60_000, minLifetimeMs: 50, lifetimeJitter: 0 });
  const ours = open({ user: user(1), params: { reconnectOnClose: '1' } });
  const java = open({ user: user(2) });
  const expiring = open({ user: user(3), params: { keepaliveTime: 50 } });
  const kept = open({ user: user(4) });
  t.is(node.disconnect('user', ['1', '2'], true, 'kick'), 2);
  t.deepEqual(ours.res.dataOf('connect-close'), [{ connectionId: ours.conn.id, reason: 'kick', reconnect: true }]);
  await java.res.ended();
  t.deepEqual(
    java.res.events.map((e) => e.event),
    ['connect-finish'],
    'no connect-close: the end alone makes it reconnect',
  );
  await expiring.res.ended();
  t.deepEqual(
    expiring.res.events.map((e) => e.event),
    ['connect-finish'],
  );
  t.is(expiring.conn.closeReason, 'expired');
  // Staying away is still said to every client.
  t.is(node.disconnect('user', ['4'], false, 'kick'), 1);
  t.deepEqual(kept.res.dataOf('connect-close'), [{ connectionId: kept.conn.id, reason: 'kick', reconnect: false }]);
});

test('shutdown ends a client without reconnectOnClose with a bare retry: and no event', async (t) => {
  const { node, open } = makeNode(t, { reconnectTimeMs: 1000 });
  const java = open({ user: user(1) });
  await node.close(1000);
  t.true(java.res.writableFinished);
  t.deepEqual(
    java.res.events.map((e) => e.event),
    ['connect-finish'],
  );
  const last = java.res.chunks.at(-1)!.toString('utf8');
  t.regex(last, /^retry: \d+\n\n$/);
  const retry = Number(/\d+/.exec(last)![0]);
  t.true(retry >= 250 && retry <= 1250, `retry ${retry}`);
});
