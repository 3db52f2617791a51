import test, { type ExecutionContext } from 'ava';
import { MemoryBus, type Hub, type PresenceChange, type SsePluginOptions } from '../lib/index.js';
import { getJson, postJson, startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

/** Short delays so that a leave counts quickly; the leave delay must exceed the reconnect delay. */
const quick: Partial<SsePluginOptions> = {
  authorizeChannel: () => true,
  reconnectTimeMs: 50,
  presence: { leaveDelayMs: 250 },
};

async function twoNodes(t: ExecutionContext, options: Partial<SsePluginOptions> = {}): Promise<[StartedPlugin, StartedPlugin]> {
  const bus = new MemoryBus();
  const a = await startPlugin(t, { cluster: { transport: bus.transport('a'), timeoutMs: 1000 }, ...options });
  const b = await startPlugin(t, { cluster: { transport: bus.transport('b'), timeoutMs: 1000 }, ...options });
  await Promise.all([a.plugin.hub.ready(), b.plugin.hub.ready()]);
  return [a, b];
}

/** Presence events of hubs, as `join room:1 7` lines in the order they came. */
function record(...hubs: Hub[]): string[] {
  const seen: string[] = [];
  for (const hub of hubs) {
    hub.on('presence-join', (c: PresenceChange) => seen.push(`join ${c.channel} ${c.userId}`));
    hub.on('presence-leave', (c: PresenceChange) => seen.push(`leave ${c.channel} ${c.userId}`));
  }
  return seen;
}

/** Waits for a condition checked every few ms (a bounded wait, never a fixed sleep). */
async function until(predicate: () => boolean, what: string, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Closes a stream and waits until its hub has removed it. */
async function closeOn(hub: Hub, stream: RawStream): Promise<void> {
  const gone = new Promise<void>((resolve) => {
    const check = (conn: { id: string }): void => {
      if (conn.id !== stream.connectionId) return;
      hub.off('disconnect', check);
      resolve();
    };
    hub.on('disconnect', check);
  });
  await stream.close();
  await gone;
}

test('presence lists users with connection counts across two nodes, capped, with the total', async (t) => {
  const [a, b] = await twoNodes(t, { authorizeChannel: () => true, presence: { maxListed: 2 } });
  const one = await RawStream.open(t, `${a.base}/connect?access-token=1&channels=room:1`);
  await RawStream.open(t, `${b.base}/connect?access-token=1&channels=room:1`);
  await RawStream.open(t, `${b.base}/connect?access-token=2&channels=room:1,room:2`);
  await RawStream.open(t, `${a.base}/connect?access-token=3&channel=room:1`); // the fixed channel counts too
  await RawStream.open(t, `${a.base}/connect?access-token=anon&channels=room:1`); // a member, not a user
  const outsider = await RawStream.open(t, `${a.base}/connect?access-token=4`);

  t.deepEqual(await a.plugin.hub.presence('room:1', { limit: 10 }), {
    channel: 'room:1',
    users: [
      { userId: '1', connections: 2 },
      { userId: '2', connections: 1 },
      { userId: '3', connections: 1 },
    ],
    total: 3,
  });
  t.deepEqual(await b.plugin.hub.presence('room:1'), {
    channel: 'room:1',
    users: [
      { userId: '1', connections: 2 },
      { userId: '2', connections: 1 },
    ],
    total: 3,
  });
  t.deepEqual(await b.plugin.hub.presence('empty'), { channel: 'empty', users: [], total: 0 });

  const answer = await getJson(`${b.base}/connect/presence.json?access-token=1&connectionId=${one.connectionId}&channel=room:1`);
  t.is(answer.status, 200);
  t.deepEqual(answer.body.data, {
    channel: 'room:1',
    users: [
      { userId: '1', connections: 2 },
      { userId: '2', connections: 1 },
    ],
    total: 3,
  });
  const notMember = await getJson(`${a.base}/connect/presence.json?access-token=1&connectionId=${one.connectionId}&channel=room:2`);
  t.is(notMember.status, 403);
  const outside = await getJson(`${a.base}/connect/presence.json?access-token=4&connectionId=${outsider.connectionId}&channel=room:1`);
  t.is(outside.status, 403);
  const theirs = await getJson(`${a.base}/connect/presence.json?access-token=4&connectionId=${one.connectionId}&channel=room:1`);
  t.is(theirs.body.code, 'ERR_SSE_FORBIDDEN');
  const noChannel = await getJson(`${a.base}/connect/presence.json?access-token=1&connectionId=${one.connectionId}`);
  t.is(noChannel.status, 400);
  await t.throwsAsync(a.plugin.hub.presence('x', { limit: -1 }), { instanceOf: TypeError });
});

test('presence-join once per user, presence-leave once after the delay; a quick reconnect emits nothing', async (t) => {
  const s = await startPlugin(t, quick);
  const hub = s.plugin.hub;
  const seen = record(hub);
  const tab1 = await RawStream.open(t, `${s.base}/connect?access-token=1&channels=room:1`);
  t.deepEqual(seen, ['join room:1 1'], 'emitted as the stream opens');
  const tab2 = await RawStream.open(t, `${s.base}/connect?access-token=1&channels=room:1`);
  await closeOn(hub, tab1);
  t.deepEqual(seen, ['join room:1 1'], 'a second tab, and one of two tabs closing, are no news');

  // The last tab drops and the page reconnects within the delay: nothing to tell.
  await closeOn(hub, tab2);
  const back = await RawStream.open(t, `${s.base}/connect?access-token=1&channels=room:1`);
  // A marker user leaving after that: once its leave is out, the first one's delay is over too.
  const marker = await RawStream.open(t, `${s.base}/connect?access-token=9&channels=room:1`);
  await closeOn(hub, marker);
  await until(() => seen.includes('leave room:1 9'), 'the marker leave');
  t.deepEqual(seen, ['join room:1 1', 'join room:1 9', 'leave room:1 9']);

  // Leaving through leave.do counts as a leave too.
  await postJson(`${s.base}/connect/leave.do?access-token=1`, { connectionId: back.connectionId, channels: ['room:1'] });
  await until(() => seen.length === 4, 'the leave');
  t.is(seen[3], 'leave room:1 1');
  t.deepEqual(await hub.presence('room:1'), { channel: 'room:1', users: [], total: 0 });
});

test('across two nodes: one join and one leave for a user on both, and a reconnect to the other node emits nothing', async (t) => {
  const [a, b] = await twoNodes(t, quick);
  const seen = record(a.plugin.hub, b.plugin.hub);
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=1&channels=room:1`);
  await until(() => seen.length === 1, 'the join');
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=1&channels=room:1`);
  // The page drops from a and comes back on b before the delay ends.
  await closeOn(a.plugin.hub, onA);
  const againOnB = await RawStream.open(t, `${b.base}/connect?access-token=1&channels=room:1`);
  const marker = await RawStream.open(t, `${a.base}/connect?access-token=9&channels=room:1`);
  await closeOn(a.plugin.hub, marker);
  await until(() => seen.includes('leave room:1 9'), 'the marker leave');
  t.deepEqual(seen, ['join room:1 1', 'join room:1 9', 'leave room:1 9']);

  await closeOn(b.plugin.hub, onB);
  await closeOn(b.plugin.hub, againOnB);
  await until(() => seen.includes('leave room:1 1'), 'the leave');
  t.deepEqual(seen, ['join room:1 1', 'join room:1 9', 'leave room:1 9', 'leave room:1 1']);
});

test('a user leaving two nodes at once gets one presence-leave; joining two nodes at once, one presence-join', async (t) => {
  const [a, b] = await twoNodes(t, quick);
  const seen = record(a.plugin.hub, b.plugin.hub);
  const [onA, onB] = await Promise.all([
    RawStream.open(t, `${a.base}/connect?access-token=5&channels=room:1`),
    RawStream.open(t, `${b.base}/connect?access-token=5&channels=room:1`),
  ]);
  await until(() => seen.length >= 1, 'a join');
  await Promise.all([closeOn(a.plugin.hub, onA), closeOn(b.plugin.hub, onB)]);
  await until(() => seen.includes('leave room:1 5'), 'a leave');
  // A marker after both: any duplicate of the leave above would have come before its own.
  const marker = await RawStream.open(t, `${a.base}/connect?access-token=9&channels=room:1`);
  await closeOn(a.plugin.hub, marker);
  await until(() => seen.includes('leave room:1 9'), 'the marker leave');
  t.deepEqual(seen, ['join room:1 5', 'leave room:1 5', 'join room:1 9', 'leave room:1 9']);
});

test('members of an opted-in channel get sse-presence, cluster-wide; other channels stay quiet', async (t) => {
  const [a, b] = await twoNodes(t, { ...quick, presence: { leaveDelayMs: 250, notifyMembers: (channel) => channel.startsWith('room:') } });
  const seen = record(a.plugin.hub);
  const member = await RawStream.open(t, `${b.base}/connect?access-token=1&channels=room:1,lobby`);
  const mine = JSON.parse((await member.next('sse-presence')).data);
  t.deepEqual(mine, { channel: 'room:1', userId: '1', action: 'join' }, 'its own arrival');

  const guest = await RawStream.open(t, `${a.base}/connect?access-token=2&channels=room:1,lobby`);
  t.deepEqual(JSON.parse((await member.next('sse-presence')).data), { channel: 'room:1', userId: '2', action: 'join' });
  await until(() => seen.includes('join lobby 2'), 'the lobby join');
  await a.plugin.hub.sendByConnectionId(member.connectionId, 'marker', 1);
  await member.next('marker');
  t.deepEqual(
    member.named('sse-presence').map((e) => JSON.parse(e.data).channel),
    ['room:1', 'room:1'],
    'nothing for the lobby',
  );

  await postJson(`${a.base}/connect/leave.do?access-token=2`, { connectionId: guest.connectionId, channels: ['room:1'] });
  t.deepEqual(JSON.parse((await member.next('sse-presence')).data), { channel: 'room:1', userId: '2', action: 'leave' });
  t.is(guest.named('sse-presence').length, 1, 'the guest saw its own join, and nothing once it left');
});

test('the presence questions of one tick go to a peer as one request', async (t) => {
  const bus = new MemoryBus();
  const a = await startPlugin(t, { ...quick, cluster: { transport: bus.transport('a'), timeoutMs: 1000 } });
  const b = await startPlugin(t, { ...quick, cluster: { transport: bus.transport('b'), timeoutMs: 1000 } });
  await Promise.all([a.plugin.hub.ready(), b.plugin.hub.ready()]);
  const seen = record(a.plugin.hub, b.plugin.hub);
  let requests = 0;
  bus.onRequest = (_from, _to, request) => {
    if (request.type === 'member-state') requests++;
  };
  await RawStream.open(t, `${a.base}/connect?access-token=1`);
  const channels = Array.from({ length: 30 }, (_, i) => `room:${i}`);
  t.is(await a.plugin.hub.joinChannel({ userId: 1 }, channels), 1);
  await until(() => seen.length === 30, '30 joins');
  t.is(requests, 1);
  t.deepEqual(seen.sort(), channels.map((c) => `join ${c} 1`).sort());
});

test('presence options are checked at once', (t) => {
  t.throws(() => startPluginSync({ reconnectTimeMs: 5000, presence: { leaveDelayMs: 4000 } }), { instanceOf: TypeError, message: /leaveDelayMs/ });
  t.throws(() => startPluginSync({ presence: { maxListed: 0 } }), { instanceOf: TypeError });
  t.throws(() => startPluginSync({ presence: { notifyMembers: true as never } }), { instanceOf: TypeError });
  t.throws(() => startPluginSync({ maxChannelsPerConnection: -1 }), { instanceOf: TypeError });
  t.throws(() => startPluginSync({ authorizeChannel: 'yes' as never }), { instanceOf: TypeError });
});

import { ssePlugin } from '../lib/index.js';
function startPluginSync(options: Partial<SsePluginOptions>): unknown {
  return ssePlugin('/sse/x', { authenticate: () => null, ...options });
}

test("a node cut off: its users' leaves are announced once by the nodes left, unless they reconnected elsewhere within the delay", async (t) => {
  const bus = new MemoryBus();
  const node = async (id: string): Promise<StartedPlugin> => {
    const s = await startPlugin(t, { ...quick, cluster: { transport: bus.transport(id), timeoutMs: 1000 } });
    await s.plugin.hub.ready();
    return s;
  };
  const [a, b, c] = [await node('a'), await node('b'), await node('c')];
  const seen = record(a.plugin.hub, b.plugin.hub, c.plugin.hub);
  await RawStream.open(t, `${b.base}/connect?access-token=1&channels=room:1`);
  await RawStream.open(t, `${b.base}/connect?access-token=2&channels=room:1`);
  await until(() => seen.length === 2, 'the joins');

  // b vanishes (no goodbye, its streams never close as far as a and c can tell); user 2's page
  // reconnects to c before the leave delay ends, user 1's does not.
  bus.cut('b');
  await RawStream.open(t, `${c.base}/connect?access-token=2&channels=room:1`);
  await until(() => seen.includes('leave room:1 1'), "user 1's leave");
  // A marker after it: a duplicate of the leave, or a leave of user 2, would come before its own.
  const marker = await RawStream.open(t, `${a.base}/connect?access-token=9&channels=room:1`);
  await closeOn(a.plugin.hub, marker);
  await until(() => seen.includes('leave room:1 9'), 'the marker leave');
  t.deepEqual(seen, ['join room:1 1', 'join room:1 2', 'leave room:1 1', 'join room:1 9', 'leave room:1 9']);
  t.deepEqual(await a.plugin.hub.presence('room:1'), { channel: 'room:1', users: [{ userId: '2', connections: 1 }], total: 1 });

  // c told the others it holds user 2 now: when c vanishes too, a announces that leave.
  bus.cut('c');
  await until(() => seen.includes('leave room:1 2'), "user 2's leave");
  t.is(seen.filter((e) => e === 'leave room:1 2').length, 1);
});

test('a node that comes up learns who its peers hold: it announces their leaves too when they vanish', async (t) => {
  const bus = new MemoryBus();
  const node = async (id: string): Promise<StartedPlugin> => {
    const s = await startPlugin(t, { ...quick, cluster: { transport: bus.transport(id), timeoutMs: 1000 } });
    await s.plugin.hub.ready();
    return s;
  };
  const b = await node('b');
  const seen = record(b.plugin.hub);
  await RawStream.open(t, `${b.base}/connect?access-token=1&channels=room:1`);
  await until(() => seen.length === 1, 'the join');
  // a starts after the user joined b: no news reached it, only b's snapshot when b came up.
  const a = await node('a');
  const onA = record(a.plugin.hub);
  // a asked b for its snapshot as b came up; a round trip asked later is answered after it.
  t.is((await a.plugin.hub.presence('room:1')).total, 1);
  bus.cut('b');
  await until(() => onA.includes('leave room:1 1'), "user 1's leave on a");
  t.deepEqual(onA, ['leave room:1 1']);
});
