import test, { type ExecutionContext } from 'ava';
import type { PresenceChange, SsePluginOptions } from '../lib/index.js';
import { eventually, introduce, SECRET } from './helpers/cluster.js';
import { postJson, startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

// A peer's first answer can take a while on a busy machine (see cluster-http.test.ts).
const TIMEOUT_MS = 3000;

async function twoHttpNodes(t: ExecutionContext, options: Partial<SsePluginOptions>): Promise<[StartedPlugin, StartedPlugin]> {
  const nodes: StartedPlugin[] = [];
  for (let i = 0; i < 2; i++) {
    const started = await startPlugin(t, {
      ...options,
      cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: TIMEOUT_MS, healthIntervalMs: 100 },
    });
    await started.plugin.hub.ready();
    nodes.push(started);
  }
  introduce(nodes.map((n) => n.plugin.hub));
  for (const n of nodes) await eventually(() => n.plugin.hub.cluster!.peers().length === 1, 'peer up');
  return [nodes[0]!, nodes[1]!];
}

test('over the signed HTTP transport: remote joins, server joins, channel sends, presence and its news', async (t) => {
  const [a, b] = await twoHttpNodes(t, {
    authorizeChannel: (_ctx, _user, channel) => channel.startsWith('room:'),
    reconnectTimeMs: 50,
    presence: { leaveDelayMs: 300, notifyMembers: () => true },
  });
  const seen: string[] = [];
  for (const hub of [a.plugin.hub, b.plugin.hub]) {
    hub.on('presence-join', (c: PresenceChange) => seen.push(`join ${c.channel} ${c.userId}`));
    hub.on('presence-leave', (c: PresenceChange) => seen.push(`leave ${c.channel} ${c.userId}`));
  }
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=1`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=2&channels=room:1`);
  const joined = await postJson(`${b.base}/connect/join.do?access-token=1`, { connectionId: onA.connectionId, channels: ['room:1'] });
  t.deepEqual(joined.body.data, { channels: ['room:1'] });
  t.deepEqual(JSON.parse((await onB.next('sse-presence')).data), { channel: 'room:1', userId: '2', action: 'join' });
  t.deepEqual(JSON.parse((await onB.next('sse-presence')).data), { channel: 'room:1', userId: '1', action: 'join' });
  t.is(await b.plugin.hub.sendByChannel('room:1', 'chat', 'hi'), 2);
  await onA.next('chat');
  t.deepEqual(await b.plugin.hub.presence('room:1'), {
    channel: 'room:1',
    users: [
      { userId: '1', connections: 1 },
      { userId: '2', connections: 1 },
    ],
    total: 2,
  });
  t.deepEqual(await b.plugin.hub.channelsOf(onA.connectionId), ['room:1']);
  t.is(await b.plugin.hub.joinChannel({ userId: 1 }, 'room:2'), 1);
  t.deepEqual(JSON.parse((await onA.next('sse-channels')).data), { channels: ['room:1', 'room:2'] });

  const over = await postJson(`${b.base}/connect/join.do?access-token=1`, { connectionId: onA.connectionId, channels: ['nope'] });
  t.is(over.body.code, 'ERR_SSE_CHANNEL_DENIED');
  await onA.close();
  t.deepEqual(JSON.parse((await onB.next('sse-presence', 5000)).data), { channel: 'room:1', userId: '1', action: 'leave' });
  await eventually(() => seen.includes('leave room:2 1'), 'the leave from room:2');
  t.deepEqual(seen.sort(), ['join room:1 1', 'join room:1 2', 'join room:2 1', 'leave room:1 1', 'leave room:2 1']);
});
