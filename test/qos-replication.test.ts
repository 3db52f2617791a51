import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectMetrics, MemoryBus, type MemoryTransport, type QosReplicationOptions } from '../lib/index.js';
import { eventually, introduce, SECRET } from './helpers/cluster.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

// Durable messages copied to other nodes of a LAN cluster (qos.replication, issue 29): nodes
// of one process on an in-memory bus, each with its own SQLite file (a real file on disk).

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sse-replication-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Nodes {
  bus: MemoryBus;
  dir: string;
  start(id: string, replication?: QosReplicationOptions, file?: string, transport?: MemoryTransport): Promise<StartedPlugin>;
}

function cluster(t: ExecutionContext): Nodes {
  const bus = new MemoryBus();
  const dir = tempDir(t);
  return {
    bus,
    dir,
    async start(id, replication, file = join(dir, `${id}.db`), transport = bus.transport(id)) {
      const node = await startPlugin(t, {
        cluster: { transport, timeoutMs: 500 },
        qos: { file, integrityCheck: false, ...(replication === undefined ? {} : { replication }) },
      });
      await node.plugin.hub.ready();
      return node;
    },
  };
}

/** Which of `nodes` holds a copy (`held` > 0). */
function holders(nodes: StartedPlugin[]): StartedPlugin[] {
  return nodes.filter((n) => n.plugin.hub.qos.replicationStats().held > 0);
}

test('a send resolves with copies 2 once a replica committed it; an ack removes every copy', async (t) => {
  const c = cluster(t);
  const a = await c.start('a');
  const b = await c.start('b');
  const sent = await a.plugin.hub.qos.sendByUserId(7, 'offer', { n: 1 });
  t.is(sent.copies, 2);
  t.is(b.plugin.hub.qos.replicationStats().held, 1, 'the replica committed it before the send resolved');
  t.like(a.plugin.hub.qos.replicationStats(), { replicated: 1, underReplicated: 0 });
  const collected = await collectMetrics([a.plugin.hub, b.plugin.hub]);
  t.teardown(() => collected.stop());
  const metrics = await collected.registry.metrics();
  t.regex(metrics, /^sse_qos_copies_held\{hub="test",node="b"\} 1$/m);
  t.regex(metrics, /^sse_qos_replicated_total\{hub="test",node="a"\} 1$/m);
  // The user connects to the replica while the owner is up: served by the owner, acked there, the copy dropped.
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7`);
  t.is((await onB.next('offer')).id, sent.messageId);
  await eventually(() => a.plugin.hub.qos.pendingCount({ userId: 7 }) === 0, 'acked at the owner');
  await eventually(() => b.plugin.hub.qos.replicationStats().held === 0, 'the copy removed');
  t.is(onB.named('offer').length, 1);
});

test("copies: 1 keeps today's behaviour: no copy anywhere", async (t) => {
  const c = cluster(t);
  const a = await c.start('a', { copies: 1 });
  const b = await c.start('b', { copies: 1 });
  const sent = await a.plugin.hub.qos.sendByUserId(7, 'offer', 1);
  t.is(sent.copies, 1);
  t.is(b.plugin.hub.qos.replicationStats().held, 0);
});

test('owner gone: a user on another node gets its messages from the replica, in order; acks kept for the owner, which drops them when back', async (t) => {
  const c = cluster(t);
  let a = await c.start('a');
  // The holder's word to the owner that is back travels slowly: its pulls must wait for it.
  const slow = c.bus.transport('b');
  const request = slow.request.bind(slow);
  slow.request = async (peerId, message, timeoutMs) => {
    if (message.type === 'qos-copy-acks') await new Promise((resolve) => setTimeout(resolve, 1500));
    return request(peerId, message, timeoutMs);
  };
  const b = await c.start('b', undefined, undefined, slow);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await a.plugin.hub.qos.sendByUserId(7, 'offer', i)).messageId);
  t.is(b.plugin.hub.qos.replicationStats().held, 5);
  await a.plugin.close();
  await eventually(() => b.plugin.hub.cluster!.peers().length === 0, 'b sees a gone');

  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7`);
  await onB.until(() => onB.named('offer').length === 5, 'five messages from the copies');
  t.deepEqual(
    onB.named('offer').map((e) => e.id),
    ids,
  );
  // Written to a client that cannot ack: acked by the write, kept for the owner.
  await eventually(() => b.plugin.hub.qos.replicationStats().held === 0, 'copies removed on the holder');
  t.true(b.plugin.hub.qos.replicationStats().servedFromCopies >= 5);

  // The owner comes back with its disk, the user still connected to the holder: the owner learns
  // the acks before the holder pulls from it, so nothing comes again.
  a = await c.start('a', undefined, join(c.dir, 'a.db'));
  // A stream opens on the owner at once: its replay waits for the acks the holder kept.
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=7`);
  await eventually(() => a.plugin.hub.qos.pendingCount({ userId: 7 }) === 0, 'the owner dropped what was acked meanwhile');
  t.like(a.plugin.hub.qos.replicationStats(), { acksReconciled: 5, duplicates: 0 });
  t.is(b.plugin.hub.qos.replicationStats().acksKept, 5);
  await a.plugin.hub.qos.sendByUserId(7, 'marker', 'end');
  await onB.next('marker');
  await onA.next('marker');
  t.is(onB.named('offer').length, 5, 'nothing redelivered on the holder');
  t.is(onA.named('offer').length, 0, 'nothing redelivered on the owner');
});

test('owner wiped: it comes back with a new tag, the holder keeps serving the old messages', async (t) => {
  const c = cluster(t);
  const a = await c.start('a');
  const b = await c.start('b');
  const sent = await a.plugin.hub.qos.sendByUserId(9, 'offer', 'kept');
  const oldTag = a.plugin.hub.qos.tag;
  await a.plugin.close();
  rmSync(join(c.dir, 'a.db'), { force: true });
  const a2 = await c.start('a', undefined, join(c.dir, 'a-new.db'));
  t.not(a2.plugin.hub.qos.tag, oldTag);
  await eventually(() => b.plugin.hub.cluster!.peers().length === 1, 'b sees the new a');
  // The user connects to the wiped node: it pulls from the holder of the old tag's copies.
  const onA = await RawStream.open(t, `${a2.base}/connect?access-token=9`);
  t.is((await onA.next('offer')).id, sent.messageId);
  await eventually(() => b.plugin.hub.qos.replicationStats().held === 0, 'acked on the holder');
});

test('whenShort: degrade resolves with the copies it got, fail rejects and stores nothing', async (t) => {
  const c = cluster(t);
  const alone = await c.start('a');
  t.is((await alone.plugin.hub.qos.sendByUserId(1, 'x', 1)).copies, 1, 'degrade: alone, one copy');
  t.like(alone.plugin.hub.qos.replicationStats(), { underReplicated: 1 });

  const f = cluster(t);
  const strict = await f.start('s', { whenShort: 'fail', timeoutMs: 300 });
  await t.throwsAsync(strict.plugin.hub.qos.sendByUserId(1, 'x', 1), { code: 'ERR_SSE_TOO_FEW_COPIES' });
  t.is(strict.plugin.hub.qos.pendingCount(), 0);
  t.like(strict.plugin.hub.qos.replicationStats(), { underReplicated: 0 }, 'refused before anything was stored or copied');
  const peer = await f.start('p', { whenShort: 'fail', timeoutMs: 300 });
  t.is((await strict.plugin.hub.qos.sendByUserId(1, 'x', 2)).copies, 2);
  // The replica does not answer in time: deleted again on the owner, and on the replica once it answers.
  const onS = await RawStream.open(t, `${strict.base}/connect?access-token=2`);
  f.bus.stall('p');
  await t.throwsAsync(strict.plugin.hub.qos.sendByUserId(2, 'late', 3), { code: 'ERR_SSE_TOO_FEW_COPIES' });
  t.is(strict.plugin.hub.qos.pendingCount({ userId: 2 }), 0);
  f.bus.heal('p');
  await eventually(() => peer.plugin.hub.qos.replicationStats().held === 1, 'the late copy dropped on the replica');
  t.is(onS.named('late').length, 0, 'a refused send is written to no connection');
});

test('re-replication: an owner gone longer than rereplicateAfterMs has its copies copied again, so that a second loss loses nothing', async (t) => {
  const c = cluster(t);
  const replication = { rereplicateAfterMs: 200 };
  const a = await c.start('a', replication);
  const b = await c.start('b', replication);
  const d = await c.start('d', replication);
  const sent = await Promise.all([1, 2, 3, 4, 5, 6].map((u) => a.plugin.hub.qos.sendByUserId(u, 'offer', u)));
  const more = [await a.plugin.hub.qos.sendByUserId(1, 'offer', 'second'), await a.plugin.hub.qos.sendByUserId(1, 'offer', 'third')];
  t.true([...sent, ...more].every((s) => s.copies === 2));
  c.bus.cut('a');
  await eventually(
    () => holders([b, d]).length === 2 && b.plugin.hub.qos.replicationStats().held === 8 && d.plugin.hub.qos.replicationStats().held === 8,
    'both survivors hold every message',
    10_000,
  );
  // Both hold user 1's three: a stream gets each once, in order.
  const once = await RawStream.open(t, `${d.base}/connect?access-token=1&ack=1`);
  await once.until(() => once.named('offer').length >= 3, 'three offers');
  await d.plugin.hub.sendByConnectionId(once.connectionId, 'marker', 1);
  await once.next('marker');
  t.deepEqual(
    once.named('offer').map((e) => e.id),
    [sent[0]!.messageId, ...more.map((m) => m.messageId)],
  );
  await once.close();
  // Lose a second node: the last one still serves every user.
  c.bus.cut('b');
  for (const s of sent) {
    const u = sent.indexOf(s) + 1;
    const onD = await RawStream.open(t, `${d.base}/connect?access-token=${u}`);
    t.is((await onD.next('offer')).id, s.messageId);
    await onD.close();
  }
});

test('a partition: both sides deliver, the duplicates are counted when it heals, nothing is lost', async (t) => {
  const c = cluster(t);
  const a = await c.start('a');
  const b = await c.start('b');
  const sent = await a.plugin.hub.qos.sendByUserId(5, 'offer', 'p');
  c.bus.cut('a');
  // Each side has the user connect: the owner from its store, the holder from its copy.
  const onA = await RawStream.open(t, `${a.base}/connect?access-token=5`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=5`);
  t.is((await onA.next('offer')).id, sent.messageId);
  t.is((await onB.next('offer')).id, sent.messageId);
  await eventually(() => a.plugin.hub.qos.pendingCount({ userId: 5 }) === 0 && b.plugin.hub.qos.replicationStats().held === 0, 'acked on both sides');
  c.bus.heal('a');
  await eventually(() => a.plugin.hub.qos.replicationStats().duplicates === 1, 'the owner counts the duplicate');
});

test('re-replication: a replica gone longer than rereplicateAfterMs has its owner copy its messages again to a live node', async (t) => {
  const c = cluster(t);
  const replication = { rereplicateAfterMs: 200 };
  const nodes = { a: await c.start('a', replication), b: await c.start('b', replication), d: await c.start('d', replication) };
  const sent = await nodes.a.plugin.hub.qos.sendByUserId(3, 'offer', 'x');
  t.is(sent.copies, 2);
  const [replica] = holders([nodes.b, nodes.d]);
  const other = replica === nodes.b ? nodes.d : nodes.b;
  c.bus.cut(replica === nodes.b ? 'b' : 'd');
  await eventually(() => other.plugin.hub.qos.replicationStats().held === 1, 'the owner copied it to the node left', 10_000);
  t.true(nodes.a.plugin.hub.qos.replicationStats().rereplicated >= 1);
  // Now the owner goes too: the copy serves the user.
  c.bus.cut('a');
  const onOther = await RawStream.open(t, `${other.base}/connect?access-token=3`);
  t.is((await onOther.next('offer')).id, sent.messageId);
});

test('real nodes over loopback (HTTP transport): the copy travels signed, the survivor serves it once the owner is closed', async (t) => {
  const dir = tempDir(t);
  const node = async (id: string): Promise<StartedPlugin> => {
    const started = await startPlugin(t, {
      cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: 3000, healthIntervalMs: 100 },
      qos: { file: join(dir, `${id}.db`), integrityCheck: false },
    });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  introduce([a.plugin.hub, b.plugin.hub]);
  await eventually(() => a.plugin.hub.cluster!.peers().length === 1 && b.plugin.hub.cluster!.peers().length === 1, 'peers up');
  const sent = await a.plugin.hub.qos.sendByUserId(4, 'offer', { n: 4 });
  t.is(sent.copies, 2);
  await a.plugin.close();
  await eventually(() => b.plugin.hub.cluster!.peers().length === 0, 'b sees a gone', 10_000);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=4`);
  t.is((await onB.next('offer')).id, sent.messageId);
});

test('a user that reconnected while the owner was dying (its pull failed) gets its messages from the copy once the owner is down', async (t) => {
  const c = cluster(t);
  const a = await c.start('a');
  const nodes = [await c.start('b'), await c.start('d')];
  const sent = await a.plugin.hub.qos.sendByUserId(8, 'offer', 'late');
  // The user comes back on the node without the copy.
  const [holder] = holders(nodes);
  const other = nodes.find((n) => n !== holder)!;
  // The owner hangs: the pull of a stream opening there times out, the owner still counts as up.
  c.bus.stall('a');
  const failed = new Promise<void>((resolve) =>
    other.plugin.hub.on('peer-error', (e) => {
      if (e.operation === 'qos-pending') resolve();
    }),
  );
  const onOther = await RawStream.open(t, `${other.base}/connect?access-token=8`);
  await failed;
  t.is(onOther.named('offer').length, 0);
  c.bus.cut('a');
  t.is((await onOther.next('offer')).id, sent.messageId);
});

test('real nodes: an owner restarted under the same node id with a wiped disk before its peers saw it down is a new owner; its old messages come from the copy', async (t) => {
  const dir = tempDir(t);
  const node = async (id: string, file: string, cluster: object): Promise<StartedPlugin> => {
    const started = await startPlugin(t, {
      cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: 3000, nodeId: id, ...cluster },
      qos: { file: join(dir, file), integrityCheck: false },
    });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a', 'a.db', { healthIntervalMs: 100 });
  // b checks its peers rarely: a is back before b has missed it.
  const b = await node('b', 'b.db', { healthIntervalMs: 2000, healthFailures: 5 });
  introduce([a.plugin.hub, b.plugin.hub]);
  await eventually(() => a.plugin.hub.cluster!.peers().length === 1 && b.plugin.hub.cluster!.peers().length === 1, 'peers up', 10_000);
  const sent = await a.plugin.hub.qos.sendByUserId(6, 'offer', 'old');
  t.is(sent.copies, 2);
  const port = a.plugin.hub.cluster!.address!.port;
  await a.plugin.close();
  // The user comes back on b while a is away: the pull to a fails, a still counts as up there.
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=6`);
  const a2 = await node('a', 'a-wiped.db', { healthIntervalMs: 100, port });
  a2.plugin.hub.cluster!.setPeers([`127.0.0.1:${b.plugin.hub.cluster!.address!.port}`]);
  t.is((await onB.next('offer', 15_000)).id, sent.messageId);
  t.is(b.plugin.hub.cluster!.peers()[0]?.qosTag, a2.plugin.hub.qos.tag);
});
