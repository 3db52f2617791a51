// Runtime channels and presence bookkeeping in the local node alone, over fake responses.
import test, { type ExecutionContext } from 'ava';
import { SseTooManyChannelsError } from '../lib/core/errors.js';
import { resolveHubOptions, type HubOptions } from '../lib/hub-options.js';
import { LeaveQueue, type PendingLeave } from '../lib/local/leave-queue.js';
import { LocalNode } from '../lib/local/local-node.js';
import type { IncomingMessage } from 'node:http';
import { parseClientInfo } from '../lib/core/client-info.js';
import { asServerResponse, FakeRequest, FakeResponse, openStream } from './helpers/fake-stream.js';

function makeNode(t: ExecutionContext, options: HubOptions = {}): LocalNode {
  const node = new LocalNode(resolveHubOptions({ reconnectTimeMs: 20, presence: { leaveDelayMs: 60 }, ...options }, '0.0.0'));
  node.on('error', (err) => t.fail(String(err)));
  t.teardown(() => node.close(0));
  return node;
}

const ids = (conns: Iterable<{ id: string }>): string[] => [...conns].map((c) => c.id).sort();

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('changeChannels joins and leaves, keeps the channel index, refuses past the cap without a change', (t) => {
  const node = makeNode(t, { maxChannelsPerConnection: 3 });
  const changes: unknown[] = [];
  node.on('channels-change', (conn, channels, change) => changes.push([conn.id, channels, change]));
  const { conn } = openStream(node, { user: { id: 1 }, params: { channel: 'fixed' } });
  t.deepEqual(node.changeChannels(conn, ['a', 'b', 'a'], true), ['a', 'b']);
  t.deepEqual(ids(node.targets('channel', ['a'])), [conn.id]);
  t.deepEqual(conn.memberships(), ['fixed', 'a', 'b']);
  t.deepEqual(changes, [[conn.id, ['a', 'b'], { joined: ['a', 'b'], left: [] }]]);
  t.throws(() => node.changeChannels(conn, ['c', 'd'], true), { instanceOf: SseTooManyChannelsError });
  t.deepEqual(conn.channels, ['a', 'b'], 'all or nothing');
  t.deepEqual(node.changeChannels(conn, ['a', 'c'], true), ['a', 'b', 'c'], 'a channel it has is not counted again');
  t.deepEqual(node.changeChannels(conn, ['b', 'zzz'], false), ['a', 'c']);
  t.deepEqual(ids(node.targets('channel', ['b'])), []);
  t.is(changes.length, 3);
  // The fixed channel: joining records it, leaving drops the record, the membership stays.
  t.deepEqual(node.changeChannels(conn, ['a', 'fixed'], false), ['c']);
  t.deepEqual(node.changeChannels(conn, ['fixed'], true), ['c', 'fixed']);
  t.deepEqual(node.changeChannels(conn, ['fixed'], false), ['c']);
  t.deepEqual(ids(node.targets('channel', ['fixed'])), [conn.id]);
  t.deepEqual(node.query('channelsOf', [conn.id]), ['c']);
  t.is(node.query('channelsOf', ['nope']), null);
  t.deepEqual(conn.toInfo().channels, ['c']);
  conn.close('kick');
  t.deepEqual(ids(node.targets('channel', ['c'])), []);
  t.deepEqual(ids(node.targets('channel', ['fixed'])), []);
  t.deepEqual(node.changeChannels(conn, ['x'], true), ['c'], 'a closed connection changes no more');
});

test('open joins the given channels before connect-finish, up to the cap', (t) => {
  const node = makeNode(t, { maxChannelsPerConnection: 2 });
  const res = new FakeResponse();
  const conn = node.open({
    req: new FakeRequest() as unknown as IncomingMessage,
    res: asServerResponse(res),
    user: { id: 1 },
    client: parseClientInfo({}),
    request: { ip: '127.0.0.1', domain: 'example.test', userAgent: 'unit' },
    channels: ['a', 'b', 'c'],
  });
  t.deepEqual(res.dataOf<{ channels: string[] }>('connect-finish')[0]!.channels, ['a', 'b']);
  t.deepEqual(conn.channels, ['a', 'b']);
  t.deepEqual(ids(node.targets('channel', ['b'])), [conn.id]);
  const plain = openStream(node, { user: { id: 2 } });
  t.deepEqual(plain.res.dataOf<{ channels: string[] }>('connect-finish')[0]!.channels, []);
});

test('changeChannelsOf tells each changed connection sse-channels and skips one at the cap', async (t) => {
  const node = makeNode(t, { maxChannelsPerConnection: 1 });
  const one = openStream(node, { user: { id: 7 } });
  const two = openStream(node, { user: { id: 7 } });
  node.changeChannels(two.conn, ['full'], true);
  t.is(node.changeChannelsOf('user', ['7'], ['t:1'], true), 1);
  t.deepEqual(JSON.parse((await one.res.event('sse-channels')).data), { channels: ['t:1'] });
  t.is(two.res.named('sse-channels').length, 0);
  t.is(node.changeChannelsOf('user', ['7'], ['t:1'], true), 0, 'nothing new');
  t.is(node.changeChannelsOf('user', ['7'], ['t:1', 'full'], false), 2);
  t.deepEqual(JSON.parse((await two.res.event('sse-channels')).data), { channels: [] });
});

test('member-arrived for a user’s first connection in a channel; member-gone after the delay; a quick return cancels it', async (t) => {
  const node = makeNode(t);
  const seen: string[] = [];
  node.on('member-arrived', (channel, userId) => seen.push(`arrived ${channel} ${userId}`));
  node.on('member-gone', (leave) => {
    seen.push(`gone ${leave.channel} ${leave.userId}`);
    t.true(node.settleLeave(leave));
  });
  const a = openStream(node, { user: { id: 1 }, params: { channel: 'x' } });
  const b = openStream(node, { user: { id: 1 } });
  node.changeChannels(b.conn, ['x', 'y'], true);
  openStream(node, { params: { channel: 'x' } }); // anonymous: a member, not a user
  t.deepEqual(seen, ['arrived x 1', 'arrived y 1']);
  t.like(node.memberState('x', '1'), { since: a.conn.createdAt, leftAt: null });
  a.conn.close('kick');
  node.changeChannels(b.conn, ['x'], false);
  t.like(node.memberState('x', '1'), { since: null });
  t.is(typeof node.memberState('x', '1').leftAt, 'number');
  // Back before the delay ends: nothing to tell.
  openStream(node, { user: { id: 1 }, params: { channel: 'x' } });
  t.like(node.memberState('x', '1'), { leftAt: null });
  b.conn.close('kick');
  await until(() => seen.includes('gone y 1'), 'the leave from y');
  t.deepEqual(seen, ['arrived x 1', 'arrived y 1', 'gone y 1']);
  t.deepEqual(node.query('presence', ['x']), [['1', 1]]);
});

test('the leave queue: one timer, due in order, settle once, announced leaves remembered for a delay', async (t) => {
  const due: PendingLeave[] = [];
  const queue = new LeaveQueue(30, (leave) => due.push(leave));
  t.teardown(() => queue.clear());
  queue.add('c', '1', Date.now());
  queue.add('c', '2', Date.now());
  queue.add('c', '3', Date.now());
  t.true(queue.cancel('c', '2'));
  t.false(queue.cancel('c', '2'));
  await until(() => due.length === 2, 'two due leaves');
  t.deepEqual(
    due.map((l) => l.userId),
    ['1', '3'],
  );
  t.truthy(queue.get('c', '1'), 'held while it is decided');
  t.true(queue.cancel('c', '3'), 'a return while it is decided cancels it too');
  t.false(queue.settle(due[1]!));
  t.true(queue.settle(due[0]!));
  t.false(queue.settle(due[0]!));
  t.is(queue.announcedAt('c', '1'), undefined);
  queue.announced(due[0]!);
  t.is(queue.announcedAt('c', '1'), due[0]!.leftAt);
  await until(() => queue.announcedAt('c', '1') === undefined, 'the announcement to age out');
  t.is(queue.size, 0);
});

test('a tab that evicts an older one of the same browser is no arrival, and the evicted one no leave', async (t) => {
  const node = makeNode(t, { clientIdMaxConnections: 1 });
  const seen: string[] = [];
  node.on('member-arrived', (channel, userId) => seen.push(`arrived ${channel} ${userId}`));
  node.on('member-gone', (leave) => {
    seen.push(`gone ${leave.channel} ${leave.userId}`);
    node.settleLeave(leave);
  });
  const old = openStream(node, { user: { id: 1 }, params: { channel: 'x', clientId: 'tab' } });
  const fresh = openStream(node, { user: { id: 1 }, params: { channel: 'x', clientId: 'tab' } });
  t.true(old.conn.closed);
  t.is(old.conn.closeReason, 'evicted');
  t.like(node.memberState('x', '1'), { since: fresh.conn.createdAt, leftAt: null });
  fresh.conn.close('kick');
  await until(() => seen.length === 2, 'the leave');
  t.deepEqual(seen, ['arrived x 1', 'gone x 1']);
});
