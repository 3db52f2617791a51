// clientIdMaxConnections counts a browser's streams on every node of the cluster.
import test, { type ExecutionContext } from 'ava';
import { MemoryBus, type CloseReason } from '../lib/index.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

async function threeNodes(t: ExecutionContext, cap: number): Promise<StartedPlugin[]> {
  const bus = new MemoryBus();
  const nodes: StartedPlugin[] = [];
  for (const id of ['a', 'b', 'c']) {
    const started = await startPlugin(t, { clientIdMaxConnections: cap, cluster: { transport: bus.transport(id), timeoutMs: 300 } });
    await started.plugin.hub.ready();
    nodes.push(started);
  }
  return nodes;
}

/** Resolves with the reason once the connection ends on this node. */
function ended(node: StartedPlugin, id: string): Promise<CloseReason> {
  return new Promise((resolve) => {
    const listener = (conn: { id: string }, reason: CloseReason): void => {
      if (conn.id !== id) return;
      node.plugin.hub.off('disconnect', listener);
      resolve(reason);
    };
    node.plugin.hub.on('disconnect', listener);
  });
}

test('a new stream evicts the oldest stream of the same browser on whichever node it is', async (t) => {
  const [a, b, c] = await threeNodes(t, 2);
  const url = (node: StartedPlugin) => `${node.base}/connect?access-token=1@5&clientId=browser-1`;
  const first = await RawStream.open(t, url(a));
  const firstEnd = ended(a, first.connectionId);
  const second = await RawStream.open(t, url(b));
  // Another browser of the same user, and another user with the same clientId: not counted.
  const otherBrowser = await RawStream.open(t, `${a.base}/connect?access-token=1@5&clientId=browser-2`);
  const otherUser = await RawStream.open(t, `${a.base}/connect?access-token=2@5&clientId=browser-1`);
  const third = await RawStream.open(t, url(c));
  t.is(await firstEnd, 'evicted');
  await first.waitEnd();
  t.deepEqual(JSON.parse((await first.next('connect-close')).data), { connectionId: first.connectionId, reason: 'evicted', reconnect: false });
  t.false(second.ended);
  t.false(third.ended);
  t.false(otherBrowser.ended);
  t.false(otherUser.ended);

  // The next one, opened where the evicted one was, evicts the oldest left: the one on b.
  const secondEnd = ended(b, second.connectionId);
  const fourth = await RawStream.open(t, url(a));
  t.is(await secondEnd, 'evicted');
  await second.waitEnd();
  t.false(third.ended);
  t.false(fourth.ended);
  t.is((await a.plugin.hub.getConnections({ clientId: 'browser-1', userId: 1 })).length, 2);
});

test('the cap of 1 keeps only the newest stream of a browser across nodes', async (t) => {
  const [a, b, c] = await threeNodes(t, 1);
  const streams: RawStream[] = [];
  for (const node of [a, b, c, a]) {
    streams.push(await RawStream.open(t, `${node.base}/connect?access-token=7&clientId=tab`));
    await new Promise((r) => setTimeout(r, 5)); // distinct creation times
  }
  for (const s of streams.slice(0, 3)) await s.waitEnd();
  t.false(streams[3]!.ended);
  t.deepEqual(
    (await b.plugin.hub.getConnections({ clientId: 'tab' })).map((info) => info.id),
    [streams[3]!.connectionId],
  );
});
