// The hub facade over two nodes on the in-process MemoryBus: "here, then at the peers, sum"
// for the calls that count (send, disconnect, online time, channels), with fake streams. No HTTP.
import test, { type ExecutionContext } from 'ava';
import { MemoryBus } from '../../lib/cluster/memory-transport.js';
import { createHub, type Hub } from '../../lib/hub.js';
import type { LocalNode } from '../../lib/local/local-node.js';
import { openStream, type OpenOptions } from '../helpers/fake-stream.js';

async function twoHubs(
  t: ExecutionContext,
): Promise<{ bus: MemoryBus; a: Hub; b: Hub; open: (hub: Hub, o: OpenOptions) => ReturnType<typeof openStream> }> {
  const bus = new MemoryBus();
  const hubs = ['a', 'b'].map((id) => createHub({ name: 'facade', cluster: { transport: bus.transport(id), timeoutMs: 300 } }));
  for (const hub of hubs) {
    hub.on('error', (err) => t.fail(String(err)));
    t.teardown(() => hub.close({ drainMs: 0 }));
  }
  await Promise.all(hubs.map((hub) => hub.ready()));
  const [a, b] = hubs as [Hub, Hub];
  // The hub opens streams as the local node does: the fake-stream helper needs only `open`.
  return { bus, a, b, open: (hub, o) => openStream(hub as unknown as LocalNode, o) };
}

test("counts are this node's plus each peer's: send, channels, online time, disconnect", async (t) => {
  const { a, b, open } = await twoHubs(t);
  open(a, { user: { id: 7 } });
  open(b, { user: { id: 7 } });
  open(b, { user: { id: 7 } });
  t.is(await a.sendByUserId(7, 'bell', 1), 3);
  t.is(await b.joinChannel({ userId: 7 }, 'room'), 3);
  t.is(await a.setDurationByUserId(7, 60), 3);
  t.is(await a.setDurationByUserId(9, 60), 0, 'offline everywhere: kept for the next connect, written nowhere');
  t.is(await b.clearDurationByUserId(7), 3);
  t.is(await a.disconnectByUserId(7), 3);
  t.is(await a.getConnectionCount(), 0);
});

test('a peer that does not answer counts 0 and is reported; its part comes back once it does', async (t) => {
  const { bus, a, b, open } = await twoHubs(t);
  open(a, { user: { id: 7 } });
  open(b, { user: { id: 7 } });
  const errors: string[] = [];
  a.on('peer-error', ({ nodeId, operation, error }) => errors.push(`${nodeId} ${operation} ${(error as { code?: string }).code}`));
  bus.stall('b');
  // The bus's timeout timer is unref'd: a ref'd one keeps the test process awake meanwhile.
  const awake = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(awake));
  t.is(await a.sendByUserId(7, 'bell', 1), 1, "only this node's part");
  t.deepEqual(errors, ['b send ERR_SSE_PEER_TIMEOUT']);
  bus.heal('b');
  t.is(await a.sendByUserId(7, 'bell', 2), 2);
});
