// Hub calls of the Java library's backend API: connection ids, clearing online time,
// disconnects that record durations, and one-shot connect / disconnect listeners.
import test, { type ExecutionContext } from 'ava';
import { createHub, MemoryBus, type CloseReason, type Connection } from '../lib/index.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { eventually } from './helpers/cluster.js';
import { RawStream } from './helpers/stream.js';

async function twoNodes(t: ExecutionContext): Promise<{ a: StartedPlugin; b: StartedPlugin }> {
  const bus = new MemoryBus();
  const node = async (id: string) => {
    const started = await startPlugin(t, { cluster: { transport: bus.transport(id), timeoutMs: 300 } });
    await started.plugin.hub.ready();
    return started;
  };
  return { a: await node('a'), b: await node('b') };
}

test('getConnectionIds lists the live connections, cluster-wide', async (t) => {
  const { a, b } = await twoNodes(t);
  t.deepEqual(await a.plugin.hub.getConnectionIds(), []);
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=1`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=2`);
  t.deepEqual((await a.plugin.hub.getConnectionIds()).sort(), [onA.connectionId, onB.connectionId].sort());
  t.deepEqual(b.plugin.hub.localQuery('connectionIds'), [onB.connectionId]);
  await b.plugin.hub.disconnectByConnectionId(onB.connectionId);
  t.deepEqual(await a.plugin.hub.getConnectionIds(), [onA.connectionId]);
});

test('clearDurationBy* clears the online time of live connections and the values kept for offline users', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const hub = plugin.hub;
  const one = await RawStream.open(t, `${base}/connect?access-token=1&sessionDuration=50`);
  const tok = await RawStream.open(t, `${base}/connect?access-token=tok-a&sessionDuration=60`);
  const three = await RawStream.open(t, `${base}/connect?access-token=3&sessionDuration=70`);
  t.is(await hub.clearDurationByUserId(1), 1);
  t.is((await hub.getConnectionById(one.connectionId))?.sessionDuration, undefined);
  t.is(await hub.clearDurationByAccessToken('tok-a'), 1);
  t.is((await hub.getConnectionById(tok.connectionId))?.sessionDuration, undefined);
  t.is(await hub.clearDurationByConnectionId(three.connectionId), 1);
  t.is((await hub.getConnectionById(three.connectionId))?.sessionDuration, undefined);
  t.is(await hub.clearDurationByUserId(1), 0, 'nothing left to clear');

  // Kept for an offline user, then cleared: the next connect gets nothing.
  t.is(await hub.setDurationByUserId(2, 300), 0);
  t.is(await hub.setDurationByAccessToken('tok-b', 400), 0);
  await hub.clearDurationByUserId(2);
  await hub.clearDurationByAccessToken('tok-b');
  for (const token of ['2', 'tok-b']) {
    const s = await RawStream.open(t, `${base}/connect?access-token=${token}`);
    await hub.sendByConnectionId(s.connectionId, 'end', 1);
    await s.next('end');
    t.is(s.named('sse-set-duration').length, 0, `nothing waits for ${token}`);
  }
});

test('clearDuration reaches the peers: their connections and the values they keep', async (t) => {
  const { a, b } = await twoNodes(t);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=5&sessionDuration=10`);
  // Kept on b for user 6, who is offline everywhere.
  t.is(await b.plugin.hub.setDurationByUserId(6, 99), 0);
  t.is(await a.plugin.hub.clearDurationByUserId([5, 6]), 1);
  t.is((await a.plugin.hub.getConnectionById(onB.connectionId))?.sessionDuration, undefined);
  const six = await RawStream.open(t, `${b.base}/connect?access-token=6`);
  await b.plugin.hub.sendByConnectionId(six.connectionId, 'end', 1);
  await six.next('end');
  t.is(six.named('sse-set-duration').length, 0);
});

test('disconnect* with duration and sessionDuration records them before disconnect fires, on any node', async (t) => {
  const { a, b } = await twoNodes(t);
  const seen: { node: string; userId: string | undefined; duration: unknown; sessionDuration: number | undefined; reason: CloseReason }[] = [];
  for (const [name, node] of [
    ['a', a],
    ['b', b],
  ] as const) {
    node.plugin.hub.on('disconnect', (conn, reason) =>
      seen.push({ node: name, userId: conn.userId, duration: conn.attributes.get('duration'), sessionDuration: conn.sessionDuration, reason }),
    );
  }
  await RawStream.open(t, `${a.base}/connect?access-token=1`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=2`);
  await RawStream.open(t, `${b.base}/connect?access-token=tok-3`);
  t.is(await a.plugin.hub.disconnectByUserId([1, 2], { duration: 30, sessionDuration: 120 }), 2);
  t.is(await a.plugin.hub.disconnectByAccessToken('tok-3', { sessionDuration: 5 }), 1);
  await onB.waitEnd();
  t.deepEqual(
    seen.sort((x, y) => x.node.localeCompare(y.node) || String(x.userId).localeCompare(String(y.userId))),
    [
      { node: 'a', userId: '1', duration: 30, sessionDuration: 120, reason: 'kick' },
      { node: 'b', userId: '2', duration: 30, sessionDuration: 120, reason: 'kick' },
      { node: 'b', userId: 'tok-3', duration: undefined, sessionDuration: 5, reason: 'kick' },
    ],
  );
  await t.throwsAsync(() => a.plugin.hub.disconnectByUserId(1, { duration: -1 }), { instanceOf: TypeError, message: /duration/ });
  await t.throwsAsync(() => a.plugin.hub.disconnectByConnectionId('x', { sessionDuration: Number.NaN }), { instanceOf: TypeError });
});

test('a listener for a token and a channel waits for that pair (the Java addConnectListener(token, channel, …))', async (t) => {
  const { base, plugin } = await startPlugin(t, { authorizeChannel: () => true });
  const hub = plugin.hub;
  const calls: string[] = [];
  hub.addConnectListener('token', 'tok-y', (c) => calls.push(`connect ${c.channel ?? c.channels.join(',')}`), { channel: 'room:2' });
  hub.addDisconnectListener('token', 'tok-y', (c) => calls.push(`gone ${c.channel}`), { channel: 'room:2' });
  // The same token in another channel, or in none, leaves both waiting.
  const other = await RawStream.open(t, `${base}/connect?access-token=tok-y&channel=room:1`);
  await RawStream.open(t, `${base}/connect?access-token=tok-y`);
  await other.close();
  await hub.disconnectByAccessToken('tok-y');
  t.deepEqual(calls, []);
  // The pair: the fixed channel, then (for the second call) a channel joined at connect.
  const pair = await RawStream.open(t, `${base}/connect?access-token=tok-y&channel=room:2`);
  t.deepEqual(calls, ['connect room:2']);
  await pair.close();
  await eventually(() => calls.length === 2, 'the disconnect listener');
  t.deepEqual(calls, ['connect room:2', 'gone room:2']);
  hub.addConnectListener('token', 'tok-y', (c) => calls.push(`joined ${c.channels.join(',')}`), { channel: 'room:3' });
  await RawStream.open(t, `${base}/connect?access-token=tok-y&channels=room:3`);
  t.deepEqual(calls.slice(2), ['joined room:3']);
  t.throws(() => hub.addConnectListener('token', 'x', () => undefined, { channel: '' }), { instanceOf: TypeError });
});

test('addConnectListener with existing: true is called at once for the connections already open (the Java behaviour), else waits', async (t) => {
  const { base, plugin, errors } = await startPlugin(t, { authorizeChannel: () => true });
  const hub = plugin.hub;
  const calls: string[] = [];
  const a = await RawStream.open(t, `${base}/connect?access-token=tok-a&channel=room:1`);
  const b = await RawStream.open(t, `${base}/connect?access-token=tok-a&channels=room:2`);
  // Both open connections of the token, at once; nothing is left waiting.
  const remove = hub.addConnectListener('token', 'tok-a', (c) => calls.push(`open ${c.id}`), { existing: true });
  t.deepEqual(calls.sort(), [`open ${a.connectionId}`, `open ${b.connectionId}`].sort());
  remove();
  // The token + channel form: only the one in that channel (a channel joined at connect counts).
  hub.addConnectListener('token', 'tok-a', (c) => calls.push(`room ${c.id}`), { channel: 'room:2', existing: true });
  t.deepEqual(calls.slice(2), [`room ${b.connectionId}`]);
  // By default only the next connect, as before.
  hub.addConnectListener('token', 'tok-a', (c) => calls.push(`next ${c.id}`));
  t.is(calls.length, 3);
  // None open: it waits for the next connect, once.
  hub.addConnectListener('user', 'later', (c) => calls.push(`later ${c.userId}`), { existing: true });
  t.is(calls.length, 3);
  const next = await RawStream.open(t, `${base}/connect?access-token=tok-a`);
  await RawStream.open(t, `${base}/connect?access-token=later`);
  await RawStream.open(t, `${base}/connect?access-token=later`);
  t.deepEqual(calls.slice(3), [`next ${next.connectionId}`, 'later later']);
  // A listener that throws is reported, as for a later connect.
  hub.addConnectListener(
    'token',
    'tok-a',
    () => {
      throw new Error('listener broke at once');
    },
    { existing: true },
  );
  t.is((errors[0] as Error).message, 'listener broke at once');
  t.throws(() => hub.addConnectListener('token', 'x', () => undefined, { existing: 'yes' as unknown as boolean }), { instanceOf: TypeError });
});

test('addConnectListener calls once, at the next connect of that user, token or channel', async (t) => {
  const { base, plugin, errors } = await startPlugin(t);
  const hub = plugin.hub;
  const calls: string[] = [];
  const order: string[] = [];
  hub.on('connect', (c) => order.push(`event ${c.id}`));
  hub.addConnectListener('user', 7, (c: Connection) => {
    calls.push(`user ${c.userId}`);
    order.push(`listener ${c.id}`);
  });
  hub.addConnectListener('token', 'tok-x', (c) => calls.push(`token ${c.accessToken}`));
  hub.addConnectListener('channel', 'news', (c) => calls.push(`channel ${c.channel}`));
  const removed = hub.addConnectListener('user', 7, () => calls.push('removed'));
  removed();
  hub.addConnectListener('user', 9, () => {
    throw new Error('listener broke');
  });
  await RawStream.open(t, `${base}/connect?access-token=8`);
  t.deepEqual(calls, []);
  const first = await RawStream.open(t, `${base}/connect?access-token=7`);
  await RawStream.open(t, `${base}/connect?access-token=7`);
  await RawStream.open(t, `${base}/connect?access-token=tok-x`);
  await RawStream.open(t, `${base}/connect?access-token=8&channel=news`);
  await RawStream.open(t, `${base}/connect?access-token=8&channel=news`);
  t.deepEqual(calls, ['user 7', 'token tok-x', 'channel news']);
  t.deepEqual(order.slice(1, 3), [`event ${first.connectionId}`, `listener ${first.connectionId}`], 'after the connect event');
  await RawStream.open(t, `${base}/connect?access-token=9`);
  t.is((errors[0] as Error).message, 'listener broke');
});

test('addDisconnectListener calls once, when that user’s, token’s or channel’s next connection ends', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const hub = plugin.hub;
  const calls: [string, CloseReason, boolean][] = [];
  const a = await RawStream.open(t, `${base}/connect?access-token=1`);
  const b = await RawStream.open(t, `${base}/connect?access-token=1&channel=c`);
  hub.addDisconnectListener('user', 1, (c, reason) => calls.push([c.id, reason, hub.getLocalConnection(c.id) === undefined]));
  hub.addDisconnectListener('channel', 'c', (c, reason) => calls.push([`channel ${c.id}`, reason, true]));
  await hub.disconnectByConnectionId(a.connectionId);
  await a.waitEnd();
  await hub.disconnectByConnectionId(b.connectionId, { reconnect: true });
  await b.waitEnd();
  t.deepEqual(calls, [
    [a.connectionId, 'kick', true],
    [`channel ${b.connectionId}`, 'kick', true],
  ]);
});

test('one-shot listeners are bounded (10,000 waiting per kind of event) and checked', (t) => {
  const hub = createHub();
  t.teardown(() => hub.close());
  const removers: (() => void)[] = [];
  for (let i = 0; i < 10_000; i++) removers.push(hub.addConnectListener('user', i, () => undefined));
  t.throws(() => hub.addConnectListener('user', 'one-more', () => undefined), { instanceOf: RangeError });
  t.notThrows(() => hub.addDisconnectListener('user', 'one-more', () => undefined), 'disconnect listeners are counted apart');
  removers[0]!();
  t.notThrows(() => hub.addConnectListener('user', 'one-more', () => undefined), 'a removed listener frees its place');
  t.throws(() => hub.addConnectListener('tenant' as never, 1, () => undefined), { instanceOf: TypeError });
  t.throws(() => hub.addConnectListener('user', null as never, () => undefined), { instanceOf: TypeError });
  t.throws(() => hub.addConnectListener('user', 1, 'no' as never), { instanceOf: TypeError });
});
