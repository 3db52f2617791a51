import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBus, type ClusterRequest, type HelloAnswer, type MemoryTransport } from '../lib/index.js';
import { eventually } from './helpers/cluster.js';
import { carriesDurable, durableSendLoser, intercept } from './helpers/memory-cluster.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { eachOnceInOrder, RawStream } from './helpers/stream.js';

// A durable send made by a node that still holds the page's node down, after that node has
// already pulled from it (the race CI found in the LAN partition test, right after a heal):
// when the sender sees the page's node up, the connected page gets the message without a
// reconnect, once. Nodes of one process on an in-memory bus, each with its own SQLite file.

/**
 * Makes `transport` keep `peerId` down in its own view: out of its peers (listed unreachable),
 * its `peer-up` held, while the bus and the other side see both up. `release` lets it up.
 */
function holdDown(transport: MemoryTransport, peerId: string): { release(): void } {
  let holding = true;
  let held: HelloAnswer | undefined;
  const peers = transport.peers.bind(transport);
  const unreachable = transport.unreachable.bind(transport);
  const emit = transport.emit.bind(transport);
  transport.peers = () => (holding ? peers().filter((p) => p.nodeId !== peerId) : peers());
  transport.unreachable = () => (holding ? [...unreachable(), ...peers().filter((p) => p.nodeId === peerId)] : unreachable());
  transport.emit = ((event: string, ...args: unknown[]) => {
    if (holding && event === 'peer-up' && (args[0] as HelloAnswer).nodeId === peerId) {
      held = args[0] as HelloAnswer;
      return true;
    }
    return (emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
  }) as typeof transport.emit;
  return {
    release() {
      holding = false;
      if (held !== undefined && peers().some((p) => p.nodeId === peerId)) emit('peer-up', held);
    },
  };
}

async function start(t: ExecutionContext, dir: string, transport: MemoryTransport, id: string): Promise<StartedPlugin> {
  const node = await startPlugin(t, { cluster: { transport, timeoutMs: 500 }, qos: { file: join(dir, `${id}.db`), integrityCheck: false } });
  await node.plugin.hub.ready();
  return node;
}

test("a send stored while the sender held the page's node down, after that node pulled: delivered to the connected page when the sender sees it up", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-peer-back-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bus = new MemoryBus();
  const xTransport = bus.transport('x');
  const x = await start(t, dir, xTransport, 'x');
  const p = await start(t, dir, bus.transport('p'), 'p');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 1 && p.plugin.hub.cluster!.peers().length === 1, 'x and p up');

  // A partition: the page connects to p, which sees nobody; x stores a message for it meanwhile.
  bus.cut('p');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 0, 'x sees p down');
  // ack=1: the page acknowledges nothing here, so what x holds for it stays pending at x.
  const page = await RawStream.open(t, `${p.base}/connect?access-token=7&ack=1`);
  const before = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'during the partition');

  // The heal, seen by p first: p pulls from x at once (the message of the partition), while x
  // still holds p down.
  const view = holdDown(xTransport, 'p');
  bus.heal('p');
  t.is((await page.next('offer')).id, before.messageId, "p pulled the partition's message from x");
  t.deepEqual(
    x.plugin.hub.cluster!.peers().map((peer) => peer.nodeId),
    [],
    'x still holds p down',
  );

  // x stores a send for the page's user: not forwarded, p is down in its view.
  const after = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'right after the heal');
  t.is(after.delivered, 0, 'not written anywhere yet');

  // x sees p up: the page gets it without reconnecting.
  view.release();
  t.is((await page.next('offer', 5000)).id, after.messageId, 'delivered to the page connected throughout');
  await eachOnceInOrder(t, page, 'offer', [before.messageId, after.messageId], () => x.plugin.hub.qos.sendByUserId(7, 'marker', 'end'));
});

test('a peer that comes back is told to pull only by the nodes that made durable sends while it was down', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-peer-back-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bus = new MemoryBus();
  const told: string[] = [];
  bus.onRequest = (from, to, request) => {
    if (request.type === 'qos-pull-me') told.push(`${from}>${to}`);
  };
  const x = await start(t, dir, bus.transport('x'), 'x');
  const p = await start(t, dir, bus.transport('p'), 'p');
  const q = await start(t, dir, bus.transport('q'), 'q');
  const up = (n: StartedPlugin): boolean => n.plugin.hub.cluster!.peers().length === 2;
  await eventually(() => up(x) && up(p) && up(q), 'all up');
  told.length = 0;
  bus.cut('p');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 1, 'x sees p down');
  await x.plugin.hub.qos.sendByUserId(7, 'offer', 'while p is down');
  bus.heal('p');
  await eventually(() => up(x) && up(p) && up(q), 'all up again');
  await eventually(() => told.length > 0, 'x tells p');
  // q made no durable send meanwhile, and p's own sends (none) missed nobody.
  t.deepEqual(told, ['x>p']);
});

/** Counts the pulls (`qos-pending*`) the node on `transport` made of its peers that have been answered. */
function answeredPulls(transport: MemoryTransport): { count: number } {
  const pulls = { count: 0 };
  const request = transport.request.bind(transport);
  transport.request = (peerId, req, timeoutMs) => {
    const answer = request(peerId, req, timeoutMs);
    if (req.type === 'qos-pending' || req.type === 'qos-pending-batch') void answer.finally(() => pulls.count++).catch(() => undefined);
    return answer;
  };
  return pulls;
}

test("a durable send whose forward to the page's node timed out while both stayed up: delivered to the connected page, once", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-peer-back-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bus = new MemoryBus();
  const pTransport = bus.transport('p');
  const loser = durableSendLoser(pTransport);
  const pulls = answeredPulls(pTransport);
  const x = await start(t, dir, bus.transport('x'), 'x');
  const p = await start(t, dir, pTransport, 'p');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 1 && p.plugin.hub.cluster!.peers().length === 1, 'x and p up');
  const peerErrors: string[] = [];
  x.plugin.hub.on('peer-error', ({ nodeId, operation }) => peerErrors.push(`${nodeId} ${operation}`));

  // ack=1: the page acknowledges nothing here, so what x holds for it stays pending at x.
  const page = await RawStream.open(t, `${p.base}/connect?access-token=7&ack=1`);
  // The page's own pull from x (on connect) is over before the send: only another pull brings it.
  await eventually(() => pulls.count >= 1, "x answered the page's pull");
  const lost = loser.loseNext();
  const sent = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'lost on the way');
  await lost;
  t.is(sent.delivered, 0, "p's part timed out");
  t.deepEqual(peerErrors, ['p send'], 'the forward to p failed');
  t.is(x.plugin.hub.cluster!.peers().length, 1, 'p stays up in x’s view');

  // The page, connected to p throughout, gets it without reconnecting.
  t.is((await page.next('offer', 5000)).id, sent.messageId, 'delivered to the page connected throughout');
  await eachOnceInOrder(t, page, 'offer', [sent.messageId], () => x.plugin.hub.qos.sendByUserId(7, 'marker', 'end'));
});

test('a peer that stays up but refuses to be told: tried 3 times, reported once, then told when it next comes up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-peer-back-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bus = new MemoryBus();
  const pTransport = bus.transport('p');
  let refusing = true;
  let tells = 0;
  let lose = true;
  intercept(pTransport, (from, request, handler) => {
    if (lose && carriesDurable(request)) {
      lose = false;
      return new Promise<never>(() => undefined);
    }
    if (request.type !== 'qos-pull-me') return handler(from, request);
    tells++;
    return refusing ? Promise.reject(new Error('busy')) : handler(from, request);
  });
  const pulls = answeredPulls(pTransport);
  const x = await start(t, dir, bus.transport('x'), 'x');
  const p = await start(t, dir, pTransport, 'p');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 1 && p.plugin.hub.cluster!.peers().length === 1, 'x and p up');
  let gaveUp = 0;
  x.plugin.hub.on('peer-error', ({ operation }) => {
    if (operation === 'qos-pull-me') gaveUp++;
  });
  const page = await RawStream.open(t, `${p.base}/connect?access-token=7&ack=1`);
  await eventually(() => pulls.count >= 1, "x answered the page's pull");
  const sent = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'lost on the way');
  await eventually(() => gaveUp > 0, 'x gives up telling p');
  t.is(tells, 3, 'told 3 times, then given up');
  t.is(gaveUp, 1, 'reported once');
  t.is(page.named('offer').length, 0, 'not delivered while p refuses');

  // p goes down and comes back, accepting now: told when x sees it up.
  refusing = false;
  bus.cut('p');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 0, 'x sees p down');
  bus.heal('p');
  await eventually(() => tells === 4, 'x tells p once it sees it up');
  t.is((await page.next('offer', 5000)).id, sent.messageId, 'delivered to the page connected throughout');
});

/**
 * Makes the node on `transport` one of an earlier build of protocol 2: its hello says nothing
 * of `qos-pull-me`, and it refuses one as a request of a kind it does not know (the request
 * check of this build refuses unknown kinds the same way). Answers who sent it one.
 */
function earlierBuild(transport: MemoryTransport): { sentPullMe: string[] } {
  const sentPullMe: string[] = [];
  intercept(
    transport,
    (from, request, handler) => {
      if (request.type !== 'qos-pull-me') return handler(from, request);
      sentPullMe.push(from);
      return handler(from, { type: 'qos-pull-me-unknown' } as unknown as ClusterRequest);
    },
    (self) => {
      const earlier: HelloAnswer = { ...self };
      delete earlier.qosPullMe;
      return earlier;
    },
  );
  return { sentPullMe };
}

test('mixed builds: a peer of an earlier build (no qos-pull-me in its hello) is never told to pull, and still gets a partition’s message by its own pull', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-peer-back-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bus = new MemoryBus();
  const pTransport = bus.transport('p');
  const earlier = earlierBuild(pTransport);
  const x = await start(t, dir, bus.transport('x'), 'x');
  const p = await start(t, dir, pTransport, 'p');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 1 && p.plugin.hub.cluster!.peers().length === 1, 'x and p up');
  t.is(p.plugin.hub.cluster!.peers()[0]!.qosPullMe, true, 'p hears that x answers qos-pull-me');
  t.is(x.plugin.hub.cluster!.peers()[0]!.qosPullMe, undefined, "x hears nothing of it from p's earlier build");
  const peerErrors: string[] = [];
  x.plugin.hub.on('peer-error', ({ nodeId, operation }) => peerErrors.push(`${nodeId} ${operation}`));

  // A partition with a durable send for the page's user on x's side: x would tell p on the heal.
  bus.cut('p');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 0, 'x sees p down');
  const page = await RawStream.open(t, `${p.base}/connect?access-token=7&ack=1`);
  const during = await x.plugin.hub.qos.sendByUserId(7, 'offer', 'during the partition');
  bus.heal('p');
  // p pulls from x when it sees it up, as earlier builds do.
  t.is((await page.next('offer', 5000)).id, during.messageId, 'delivered by p’s own pull');
  await eventually(() => x.plugin.hub.cluster!.peers().length === 1, 'x sees p up');
  // A marker through x after the heal: by then x has seen p up and decided whether to tell it.
  await x.plugin.hub.qos.sendByUserId(7, 'marker', 'end');
  await page.next('marker', 5000);
  t.deepEqual(earlier.sentPullMe, [], 'x sent p no request of a kind it does not know');
  t.deepEqual(
    peerErrors.filter((e) => e.endsWith('qos-pull-me')),
    [],
    'and reported no refusal',
  );
  t.deepEqual(
    page.named('offer').map((e) => e.id),
    [during.messageId],
    'the message once',
  );
});
