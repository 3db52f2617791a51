import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExampleApp } from '../example/app.js';
import { getJson, listen, postJson } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

test('the example: any user joins room:…, other channels are denied; posts and presence reach the room’s members', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sse-rooms-'));
  const { app, plugins } = createExampleApp({ dataDir, env: {} });
  t.teardown(async () => {
    await Promise.all([plugins.hr.close(), plugins.hunter.close()]);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const { origin } = await listen(t, app);
  const base = `${origin}/sse/hr`;
  const ada = await RawStream.open(t, `${base}/connect?access-token=7@1`);
  const bob = await RawStream.open(t, `${base}/connect?access-token=8@1&channels=room:1,staff`);
  t.deepEqual(JSON.parse(bob.events[0]!.data).channels, ['room:1'], 'staff is not a room: dropped');

  const denied = await postJson(`${base}/connect/join.do?access-token=7@1`, { connectionId: ada.connectionId, channels: ['staff'] });
  t.is(denied.status, 403);
  t.is(denied.body.code, 'ERR_SSE_CHANNEL_DENIED');
  const joined = await postJson(`${base}/connect/join.do?access-token=7@1`, { connectionId: ada.connectionId, channels: ['room:1'] });
  t.deepEqual(joined.body.data, { channels: ['room:1'] });
  // The room is opted in to presence news: bob hears ada arrive.
  t.deepEqual(JSON.parse((await bob.next('sse-presence')).data), { channel: 'room:1', userId: '8', action: 'join' });
  t.deepEqual(JSON.parse((await bob.next('sse-presence')).data), { channel: 'room:1', userId: '7', action: 'join' });

  const presence = await getJson(`${base}/connect/presence.json?access-token=7@1&connectionId=${ada.connectionId}&channel=room:1`);
  t.deepEqual(presence.body.data, {
    channel: 'room:1',
    users: [
      { userId: '7', connections: 1 },
      { userId: '8', connections: 1 },
    ],
    total: 2,
  });

  const posted = await postJson(`${origin}/api/notify?access-token=7@1`, { channel: 'room:1', text: 'hi all' });
  t.deepEqual(posted.body, { count: 2 });
  for (const s of [ada, bob]) t.deepEqual(JSON.parse((await s.next('notify')).data), { channel: 'room:1', text: 'hi all', from: 'User 7' });
  const outside = await postJson(`${origin}/api/notify?access-token=7@1`, { channel: 'staff', text: 'x' });
  t.is(outside.status, 403);
  // The admin API sends to a room's runtime members as to any channel.
  const admin = await postJson(`${origin}/api/notify?access-token=admin`, { channel: 'room:1', event: 'bell', data: { count: 1 } });
  t.deepEqual(admin.body, { count: 2 });
});
