// Issue 21, finding 6: by default one user could hold any number of streams (5,000 from one
// user were accepted, ~12 KB each). `maxConnectionsPerUser` now defaults to 32 on each node:
// the 33rd is refused with 429 before any stream byte, other users and the user's own open
// streams are untouched, and the option raises the cap (`Infinity`: none).
import test from 'ava';
import { DEFAULT_MAX_CONNECTIONS_PER_USER } from '../lib/hub-options.js';
import { eventually } from './helpers/cluster.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

test('by default a user holds at most 32 streams; the 33rd is a 429 and changes nothing', async (t) => {
  t.is(DEFAULT_MAX_CONNECTIONS_PER_USER, 32);
  const { base, plugin } = await startPlugin(t);
  const streams = [];
  for (let i = 0; i < 32; i++) streams.push(await RawStream.open(t, `${base}/connect?access-token=1`));
  t.true(streams.every((s) => s.status === 200));
  const refused = await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is(refused.status, 429);
  t.is(JSON.parse(refused.body).code, 'ERR_SSE_TOO_MANY_CONNECTIONS');
  t.is(await plugin.hub.getConnectionCount(), 32);
  t.false(
    streams.some((s) => s.ended),
    'the open streams stay',
  );
  t.is((await RawStream.open(t, `${base}/connect?access-token=2`)).status, 200, 'another user is not counted');
  // A stream that ends frees its place.
  await streams[0]!.close();
  await eventually(async () => (await plugin.hub.getConnectionCount()) === 32, 'the closed stream leaves');
  t.is((await RawStream.open(t, `${base}/connect?access-token=1`)).status, 200);
});

test('maxConnectionsPerUser raises the cap', async (t) => {
  const { base } = await startPlugin(t, { maxConnectionsPerUser: 40 });
  for (let i = 0; i < 40; i++) t.is((await RawStream.open(t, `${base}/connect?access-token=1`)).status, 200);
  t.is((await RawStream.open(t, `${base}/connect?access-token=1`)).status, 429);
});
