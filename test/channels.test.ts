import test, { type ExecutionContext } from 'ava';
import { MemoryBus, type SsePluginOptions } from '../lib/index.js';
import { postJson, startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

/** The example's rule: any logged-in user may join `room:<anything>`, nothing else. */
const rooms: Partial<SsePluginOptions> = { authorizeChannel: (_ctx, _user, channel) => channel.startsWith('room:') };

const join = (s: StartedPlugin, token: string, connectionId: string, channels: unknown) =>
  postJson(`${s.base}/connect/join.do?access-token=${token}`, { connectionId, channels });
const leave = (s: StartedPlugin, token: string, connectionId: string, channels: unknown) =>
  postJson(`${s.base}/connect/leave.do?access-token=${token}`, { connectionId, channels });

/** Two nodes of one hub joined by an in-memory bus. */
async function twoNodes(t: ExecutionContext, options: Partial<SsePluginOptions> = {}): Promise<[StartedPlugin, StartedPlugin]> {
  const bus = new MemoryBus();
  const a = await startPlugin(t, { cluster: { transport: bus.transport('a'), timeoutMs: 500 }, ...options });
  const b = await startPlugin(t, { cluster: { transport: bus.transport('b'), timeoutMs: 500 }, ...options });
  await Promise.all([a.plugin.hub.ready(), b.plugin.hub.ready()]);
  return [a, b];
}

test('a page joins and leaves allowed channels; sends by channel follow the membership', async (t) => {
  const s = await startPlugin(t, rooms);
  const page = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  const joined = await join(s, '1', page.connectionId, ['room:1', 'room:2']);
  t.is(joined.status, 200);
  t.deepEqual(joined.body.data, { channels: ['room:1', 'room:2'] });
  t.deepEqual(await s.plugin.hub.channelsOf(page.connectionId), ['room:1', 'room:2']);
  t.is(await s.plugin.hub.sendByChannel('room:2', 'chat', { text: 'hi' }), 1);
  t.deepEqual(JSON.parse((await page.next('chat')).data), { text: 'hi' });
  t.deepEqual(
    (await s.plugin.hub.getConnections({ channel: 'room:1' })).map((c) => c.id),
    [page.connectionId],
  );
  t.true((await s.plugin.hub.getChannels()).includes('room:1'));

  const left = await leave(s, '1', page.connectionId, ['room:2', 'room:9']);
  t.deepEqual(left.body.data, { channels: ['room:1'] });
  t.is(await s.plugin.hub.sendByChannel('room:2', 'chat', 'gone'), 0);
  t.is(await s.plugin.hub.sendByChannel('room:1', 'chat', 'still'), 1);
  t.is(page.named('sse-channels').length, 0, 'the page is answered, not told');
});

test('a join is all or nothing: one refused channel is 403 ERR_SSE_CHANNEL_DENIED naming it; no hook denies all', async (t) => {
  const s = await startPlugin(t, rooms);
  const page = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  const denied = await join(s, '1', page.connectionId, ['room:1', 'admin:ops']);
  t.is(denied.status, 403);
  t.is(denied.body.code, 'ERR_SSE_CHANNEL_DENIED');
  t.regex(denied.body.errorMessage ?? denied.body.message, /admin:ops/);
  t.deepEqual(await s.plugin.hub.channelsOf(page.connectionId), []);

  const closed = await startPlugin(t);
  const other = await RawStream.open(t, `${closed.base}/connect?access-token=1`);
  const none = await join(closed, '1', other.connectionId, ['room:1']);
  t.is(none.status, 403);
  t.is(none.body.code, 'ERR_SSE_CHANNEL_DENIED');
  t.deepEqual(await closed.plugin.hub.channelsOf(other.connectionId), []);
});

test('authorizeChannel sees the user and the channel; an async answer counts', async (t) => {
  const seen: string[] = [];
  const s = await startPlugin(t, {
    authorizeChannel: async (_ctx, user, channel) => {
      seen.push(`${String(user.id)}:${channel}`);
      await new Promise((r) => setImmediate(r));
      return channel === `user:${String(user.id)}`;
    },
  });
  const page = await RawStream.open(t, `${s.base}/connect?access-token=4`);
  t.is((await join(s, '4', page.connectionId, ['user:4'])).status, 200);
  t.is((await join(s, '4', page.connectionId, ['user:5'])).status, 403);
  t.deepEqual(seen, ['4:user:4', '4:user:5']);
});

test('limits and bad input: maxChannelsPerConnection, names, another user, unknown connection', async (t) => {
  const s = await startPlugin(t, { ...rooms, maxChannelsPerConnection: 2 });
  const page = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  t.is((await join(s, '1', page.connectionId, ['room:1', 'room:2'])).status, 200);
  const over = await join(s, '1', page.connectionId, ['room:3']);
  t.is(over.status, 400);
  t.is(over.body.code, 'ERR_SSE_TOO_MANY_CHANNELS');
  t.is((await join(s, '1', page.connectionId, ['room:1'])).status, 200, 'a channel it has is no new one');
  t.deepEqual(await s.plugin.hub.channelsOf(page.connectionId), ['room:1', 'room:2']);

  for (const bad of [['room:\nx'], ['room:' + 'x'.repeat(300)], [''], [7], 'room:1', []]) {
    const res = await join(s, '1', page.connectionId, bad);
    t.is(res.status, 400, JSON.stringify(bad));
    t.is(res.body.code, 'ERR_SSE_BAD_REQUEST');
  }
  const theirs = await join(s, '2', page.connectionId, ['room:1']);
  t.is(theirs.status, 403);
  t.is(theirs.body.code, 'ERR_SSE_FORBIDDEN');
  t.is((await join(s, '1', 'no-such-connection', ['room:1'])).body.code, 'ERR_SSE_UNKNOWN_CONNECTION');
  const anonymous = await postJson(`${s.base}/connect/join.do`, { connectionId: page.connectionId, channels: ['room:1'] });
  t.is(anonymous.status, 401);
});

test('the connect parameter `channels` restores allowed channels before connect-finish and drops the rest', async (t) => {
  const s = await startPlugin(t, { ...rooms, maxChannelsPerConnection: 3 });
  const page = await RawStream.open(t, `${s.base}/connect?access-token=1&channels=room:1,secret,room:2&channel=room:legacy`);
  const finish = JSON.parse(page.events[0]!.data);
  t.deepEqual(finish.channels, ['room:1', 'room:2']);
  t.deepEqual(await s.plugin.hub.channelsOf(page.connectionId), ['room:1', 'room:2']);
  t.is(await s.plugin.hub.sendByChannel(['room:2', 'room:legacy'], 'x', 1), 1, 'once, though a member twice');
  t.is(await s.plugin.hub.sendByChannel('secret', 'x', 1), 0);
  // A repeated parameter carries names with commas; past the cap the rest are dropped.
  const many = await RawStream.open(t, `${s.base}/connect?access-token=1&channels=room:a,b&channels=room:c&channels=room:d&channels=room:e`);
  t.deepEqual(JSON.parse(many.events[0]!.data).channels, ['room:a,b', 'room:c', 'room:d']);
  const plain = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  t.deepEqual(JSON.parse(plain.events[0]!.data).channels, []);
  const bad = await fetch(`${s.base}/connect?access-token=1&channels=room:%01`);
  t.is(bad.status, 400);
  await bad.body?.cancel();
});

test('the fixed `channel` is a membership: it cannot be left, and joining it records it for a restore', async (t) => {
  const s = await startPlugin(t, { authorizeChannel: () => true });
  const page = await RawStream.open(t, `${s.base}/connect?access-token=1&channel=team`);
  t.deepEqual((await join(s, '1', page.connectionId, ['team'])).body.data, { channels: ['team'] });
  t.deepEqual((await leave(s, '1', page.connectionId, ['team'])).body.data, { channels: [] });
  t.is(await s.plugin.hub.sendByChannel('team', 'x', 1), 1);
});

test('server-side joinChannel reaches all of a user’s connections on every node and tells each in sse-channels', async (t) => {
  const [a, b] = await twoNodes(t);
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=7`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7`);
  const stranger = await RawStream.open(t, `${b.base}/connect?access-token=8`);
  const changes: string[][] = [];
  b.plugin.hub.on('channels-change', (_conn, channels) => changes.push(channels));

  t.is(await a.plugin.hub.joinChannel({ userId: 7 }, ['ticket:42', 'ticket:43']), 2);
  for (const s of [onA, onB]) t.deepEqual(JSON.parse((await s.next('sse-channels')).data), { channels: ['ticket:42', 'ticket:43'] });
  t.deepEqual(changes, [['ticket:42', 'ticket:43']]);
  t.is(await a.plugin.hub.joinChannel({ userId: 7 }, 'ticket:42'), 0, 'nothing new');
  t.is(await b.plugin.hub.sendByChannel('ticket:42', 'update', { status: 'open' }), 2);
  await onA.next('update');
  await onB.next('update');
  t.is(stranger.named('update').length, 0);

  t.is(await b.plugin.hub.leaveChannel({ connectionId: onA.connectionId }, 'ticket:42'), 1);
  t.deepEqual(JSON.parse((await onA.next('sse-channels')).data), { channels: ['ticket:43'] });
  t.deepEqual(await b.plugin.hub.channelsOf(onA.connectionId), ['ticket:43']);
  t.is(await a.plugin.hub.sendByChannel('ticket:42', 'update', 2), 1);
  t.is(await a.plugin.hub.joinChannel({ accessToken: '8' }, 'ticket:1'), 1);
  await stranger.next('sse-channels');

  await t.throwsAsync(a.plugin.hub.joinChannel({} as never, 'x'), { instanceOf: TypeError });
  await t.throwsAsync(a.plugin.hub.joinChannel({ userId: 7, accessToken: '7' } as never, 'x'), { instanceOf: TypeError });
  await t.throwsAsync(a.plugin.hub.joinChannel({ userId: 7 }, ['bad\n']), { instanceOf: TypeError });
});

test('a page’s join lands on the node holding its connection; sends by channel reach members on both nodes', async (t) => {
  const [a, b] = await twoNodes(t, rooms);
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=1`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=2`);
  // The load balancer sent the join to the other node.
  t.deepEqual((await join(b, '1', onA.connectionId, ['room:1'])).body.data, { channels: ['room:1'] });
  t.deepEqual((await join(a, '2', onB.connectionId, ['room:1'])).body.data, { channels: ['room:1'] });
  t.deepEqual(a.plugin.hub.getLocalConnection(onA.connectionId)?.channels, ['room:1']);
  t.is(await a.plugin.hub.sendByChannel('room:1', 'chat', 'hello'), 2);
  await onA.next('chat');
  await onB.next('chat');
  t.deepEqual((await b.plugin.hub.getChannels()).sort(), ['room:1']);
  t.is((await leave(b, '1', onA.connectionId, ['room:1'])).status, 200);
  t.is(await b.plugin.hub.sendByChannel('room:1', 'chat', 'again'), 1);
});

test('a remote join past the cap on its node is refused with ERR_SSE_TOO_MANY_CHANNELS', async (t) => {
  const [a, b] = await twoNodes(t, { ...rooms, maxChannelsPerConnection: 1 });
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=1`);
  t.is((await join(b, '1', onA.connectionId, ['room:1'])).status, 200);
  const over = await join(b, '1', onA.connectionId, ['room:2']);
  t.is(over.status, 400);
  t.is(over.body.code, 'ERR_SSE_TOO_MANY_CHANNELS');
});

test('a durable message to a channel resumes for a member that joined at runtime', async (t) => {
  const s = await startPlugin(t, { ...rooms, qos: { file: ':memory:' } });
  const first = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  await join(s, '1', first.connectionId, ['room:1']);
  const live = await s.plugin.hub.qos.sendByChannel('room:1', 'note', 'one');
  t.is(live.delivered, 1);
  const seen = await first.next('note');
  t.is(seen.id, live.messageId);
  await first.close();
  const missed = await s.plugin.hub.qos.sendByChannel('room:1', 'note', 'two');
  const other = await s.plugin.hub.qos.sendByChannel('room:2', 'note', 'not mine');
  t.truthy(other.messageId);
  // The page comes back with its channels and its resume point.
  const back = await RawStream.open(t, `${s.base}/connect?access-token=1&channels=room:1&lastEventId=${seen.id}`);
  const got = await back.next('note');
  t.is(got.id, missed.messageId);
  t.is(got.data, 'two');
  await s.plugin.hub.sendByConnectionId(back.connectionId, 'end', 1);
  await back.next('end');
  t.deepEqual(
    back.named('note').map((e) => e.data),
    ['two'],
  );
});
