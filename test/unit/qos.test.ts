// Durable delivery over the local node, with a fake QosCluster that records what it is asked
// and a real SQLite file in a temp dir. No HTTP server. test/unit/qos-redis.test.ts runs the
// same cases against a real redis-server (test/helpers/qos-backend.ts).
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SseQosDisabledError } from '../../lib/core/errors.js';
import { resolveHubOptions, type HubOptions } from '../../lib/hub-options.js';
import { LocalNode } from '../../lib/local/local-node.js';
import { MessageIdGenerator } from '../../lib/qos/message-id.js';
import type {
  AckedBy,
  AckItem,
  DurableAnswers,
  DurableMessage,
  DurableSend,
  PendingRequest,
  QosCluster,
  ReplicationStats,
} from '../../lib/qos/qos-cluster.js';
import { Qos, type QosAckedEvent, type QosExpiredEvent, type QosOptions } from '../../lib/qos/qos.js';
import { FakeResponse, openStream, type OpenOptions } from '../helpers/fake-stream.js';
import { eventually } from '../helpers/cluster.js';
import { storeOptions } from '../helpers/qos-backend.js';

/** A QosCluster that records every call and answers what the test sets. */
class FakeCluster implements QosCluster {
  readonly sends: DurableSend[] = [];
  readonly acks: { items: AckItem[]; connectionId: string; by: AckedBy }[] = [];
  readonly pulls: { request: PendingRequest; peerId: string | undefined }[] = [];
  /** What `forwardSend` answers: the count the peers wrote. */
  peerDelivered = 0;
  /** What `pullPending` answers: one list per peer (a promise: the answer is on its way until it settles). */
  pending: (request: PendingRequest, peerId?: string) => DurableMessage[][] | Promise<DurableMessage[][]> = () => [];
  /** What durable delivery serves the peers with (a peer's forwarded send, acks, pulls go there). */
  served: DurableAnswers | undefined;

  serve(answers: DurableAnswers): void {
    this.served = answers;
  }

  /** A peer forwards a durable send to this node. */
  forwarded(send: DurableSend): number {
    return this.served!.deliver(send);
  }

  async forwardSend(send: DurableSend): Promise<number> {
    this.sends.push(structuredClone(send));
    return this.peerDelivered;
  }

  async forwardAcks(items: AckItem[], connectionId: string, by: AckedBy): Promise<number> {
    this.acks.push(structuredClone({ items, connectionId, by }));
    return items.reduce((n, item) => n + item.targets.length, 0);
  }

  async pullPending(request: PendingRequest, peerId?: string): Promise<DurableMessage[][]> {
    this.pulls.push({ request: structuredClone(request), peerId });
    return this.pending(request, peerId);
  }

  async listStores(): Promise<{ listings: { total: number; items: never[] }[]; failed: string[] }> {
    return { listings: [], failed: [] };
  }

  copyHolders(): number {
    return 0;
  }

  async replicate(): Promise<string[]> {
    return [];
  }

  dropCopies(): void {}

  async ownAcksSettled(): Promise<void> {}

  replicationStats(): ReplicationStats {
    return { held: 0, replicated: 0, underReplicated: 0, servedFromCopies: 0, acksKept: 0, acksReconciled: 0, duplicates: 0, rereplicated: 0 };
  }

  /** Every acknowledgement forwarded, flattened: `id|kind:key|by`. */
  ackedIds(): string[] {
    return this.acks.flatMap((call) => call.items.flatMap((i) => i.targets.map((t) => `${i.messageId}|${t.kind}:${t.key}|${call.by}`)));
  }
}

interface Harness {
  node: LocalNode;
  qos: Qos;
  cluster: FakeCluster;
  acked: QosAckedEvent[];
  expired: QosExpiredEvent[];
  errors: unknown[];
  open: (options?: OpenOptions) => ReturnType<typeof openStream>;
  /** Ids as a peer with another store tag makes them. */
  peerIds: MessageIdGenerator;
}

function setup(t: ExecutionContext, options: { hub?: HubOptions; qos?: Partial<QosOptions> | false } = {}): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'sse-unit-qos-'));
  const node = new LocalNode(resolveHubOptions({ clientIdMaxConnections: 100, ...options.hub }, '0.0.0'));
  const cluster = new FakeCluster();
  const qos = new Qos(node, options.qos === false ? undefined : { ...storeOptions(join(dir, 'qos.db')), ...options.qos }, cluster);
  const errors: unknown[] = [];
  const acked: QosAckedEvent[] = [];
  const expired: QosExpiredEvent[] = [];
  node.on('error', (err) => errors.push(err));
  qos.on('error', (err) => errors.push(err));
  qos.on('qos-acked', (event) => acked.push(event));
  qos.on('qos-expired', (event) => expired.push(event));
  t.teardown(async () => {
    await node.close(0);
    await qos.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const peerIds = new MessageIdGenerator(qos.tag === 'aaaaaaaa' ? 'bbbbbbbb' : 'aaaaaaaa');
  return { node, qos, cluster, acked, expired, errors, open: (o) => openStream(node, o), peerIds };
}

const user7 = { id: 7, accessToken: 'tok-7', tenantId: 't1' };
const ids = (events: { id?: string }[]): (string | undefined)[] => events.map((e) => e.id);
const message = (id: string, kind: DurableMessage['kind'], event: string, data: string, listening = false): DurableMessage => ({
  id,
  kind,
  event,
  data,
  listening,
});

test('pending messages are replayed on open, in order and with their ids, before later sends', async (t) => {
  const { qos, open, cluster, errors } = setup(t);
  const sent = [];
  for (let i = 0; i < 3; i++) sent.push(await qos.sendByUserId(7, 'offer', { n: i }));
  const other = await qos.sendByUserId(8, 'offer', 'not for 7');
  for (const s of sent) t.is(s.delivered, 0);
  t.true(sent.every((s) => s.messageId.endsWith(qos.tag!)));
  t.deepEqual(
    sent.map((s) => s.messageId),
    sent.map((s) => s.messageId).sort(),
    'ids sort by time',
  );
  t.is(qos.pendingCount({ userId: 7 }), 3);

  const { res } = open({ user: user7, params: { ack: '1' } });
  await res.event('offer', 2);
  const live = await qos.sendByUserId(7, 'offer', { n: 3 });
  t.is(live.delivered, 1);
  await res.event('offer', 3);
  t.deepEqual(
    res.events.map((e) => e.event),
    ['connect-finish', 'offer', 'offer', 'offer', 'offer'],
  );
  t.deepEqual(ids(res.named('offer')), [...sent.map((s) => s.messageId), live.messageId]);
  t.deepEqual(res.dataOf('offer'), [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
  t.false(res.text().includes(other.messageId));
  t.is(qos.pendingCount({ userId: 7 }), 4, 'a client with acks keeps them pending until it acks');
  t.deepEqual(
    cluster.sends.map((s) => s.id),
    [...sent.map((s) => s.messageId), other.messageId, live.messageId],
    'every send is offered to the peers',
  );
  t.deepEqual(
    cluster.pulls.map((p) => p.request),
    [
      {
        refs: [
          { kind: 'user', key: '7' },
          { kind: 'token', key: 'tok-7' },
        ],
        logRefs: [],
      },
    ],
  );
  t.deepEqual(errors, []);
});

test("ack removes only the entries of the connection's user and token; foreign ids go to their owner", async (t) => {
  const { qos, open, cluster, acked, peerIds, errors } = setup(t);
  const toUser = await qos.sendByUserId(7, 'm', 1);
  const toToken = await qos.sendByAccessToken('tok-7', 'm', 2);
  const toOther = await qos.sendByUserId(8, 'm', 3);
  const toBoth = await qos.sendByUserId([7, 8], 'm', 4);
  const foreign = peerIds.next();
  const { conn, res } = open({ user: user7, params: { ack: '1' } });
  await res.event('m', 2);
  t.deepEqual(ids(res.named('m')), [toUser.messageId, toToken.messageId, toBoth.messageId]);
  t.deepEqual(acked, [], 'nothing is acknowledged by writing to a client that acks');

  const removed = await qos.ack(conn, [toUser.messageId, toToken.messageId, toOther.messageId, toBoth.messageId, 'not-an-id', foreign]);
  t.is(removed, 3 + 2, 'three entries here, two (user and token) at the owner of the foreign id');
  t.deepEqual(
    acked.map((e) => [e.messageId, e.kind, e.key, e.by, e.complete, e.connectionId]),
    [
      [toUser.messageId, 'user', '7', 'ack', true, conn.id],
      [toToken.messageId, 'token', 'tok-7', 'ack', true, conn.id],
      [toBoth.messageId, 'user', '7', 'ack', false, conn.id],
    ],
  );
  t.deepEqual(cluster.ackedIds(), [`${foreign}|user:7|ack`, `${foreign}|token:tok-7|ack`], 'only the foreign id is forwarded');
  t.is(cluster.acks[0]!.connectionId, conn.id);
  t.deepEqual((await qos.status(toOther.messageId))?.targets, [{ kind: 'user', key: '8' }]);
  t.deepEqual((await qos.status(toBoth.messageId))?.targets, [{ kind: 'user', key: '8' }]);
  t.is(await qos.status(toUser.messageId), undefined);
  t.is(qos.pendingCount({ userId: 7 }), 0);
  t.is(qos.pendingCount({ accessToken: 'tok-7' }), 0);
  t.is(qos.pendingCount({ userId: 8 }), 2);
  t.is(await qos.ack(conn, [toUser.messageId]), 0, 'an ack is done once');
  t.is(await qos.ack({ id: 'anonymous' }, [toOther.messageId]), 0, 'a connection without user or token acknowledges nothing');
  t.is(qos.pendingCount({ userId: 8 }), 2);
  t.deepEqual(errors, []);
});

test("ack by write, live send: a client without ack is done once written; the peers' count is added", async (t) => {
  const { qos, open, cluster, acked, errors } = setup(t);
  const { conn, res } = open({ user: user7 });
  t.false(conn.client.ack);
  cluster.peerDelivered = 2;
  const sent = await qos.sendByUserId(7, 'offer', { a: 1 });
  t.is(sent.delivered, 1 + 2);
  t.deepEqual(cluster.sends, [{ id: sent.messageId, kind: 'user', keys: ['7'], event: 'offer', data: '{"a":1}', listening: false }]);
  t.is((await res.event('offer')).id, sent.messageId);
  await eventually(() => acked.length === 1, 'qos-acked');
  t.like(acked[0], { messageId: sent.messageId, kind: 'user', key: '7', by: 'write', complete: true, connectionId: conn.id });
  t.is(qos.pendingCount({ userId: 7 }), 0);
  t.is(await qos.status(sent.messageId), undefined);

  // A retained-log message is written too, and never acknowledged.
  const news = await qos.sendByTenantId('t1', 'news', 'n');
  t.is(news.delivered, 1 + 2);
  t.is((await res.event('news')).id, news.messageId);
  t.truthy(await qos.status(news.messageId));
  t.is(acked.length, 1);
  t.deepEqual(cluster.acks, [], 'own messages are never acknowledged through the cluster');
  t.deepEqual(errors, []);
});

test('ack by write, replay from the store: user and token messages are removed once written', async (t) => {
  const { qos, open, acked, cluster, errors } = setup(t);
  const toUser = await qos.sendByUserId(7, 'offer', 1);
  const toToken = await qos.sendByAccessToken('tok-7', 'offer', 2);
  const { conn, res } = open({ user: user7 });
  await res.event('offer', 1);
  t.deepEqual(ids(res.named('offer')), [toUser.messageId, toToken.messageId]);
  await eventually(() => acked.length === 2, 'two qos-acked');
  t.deepEqual(
    acked.map((e) => [e.messageId, e.kind, e.key, e.by, e.connectionId]),
    [
      [toUser.messageId, 'user', '7', 'write', conn.id],
      [toToken.messageId, 'token', 'tok-7', 'write', conn.id],
    ],
  );
  t.is(qos.pendingCount(), 0);
  t.deepEqual(cluster.acks, []);
  const again = open({ user: user7 });
  t.deepEqual(again.res.named('offer'), [], 'nothing is resent');
  t.deepEqual(errors, []);
});

test('ack by write, pulled from the cluster: foreign ids acknowledged at their owner, own ones removed here', async (t) => {
  const { qos, open, cluster, acked, peerIds, errors } = setup(t);
  const own = await qos.sendByUserId(7, 'offer', 'own');
  const f1 = message(peerIds.next(), 'user', 'offer', 'f1');
  const f2 = message(peerIds.next(), 'token', 'offer', 'f2');
  const log = message(peerIds.next(), 'tenant', 'news', 'log');
  // Two peers answer; one list also carries a message of this node's own store (which the
  // replay from the store writes too): whichever writes it first removes it here, and its id
  // must never be sent to the cluster as an ack.
  cluster.pending = () => [
    [f1, f2],
    [log, message(own.messageId, 'user', 'offer', 'own')],
  ];
  const { conn, res } = open({ user: user7 });
  await res.until(() => res.named('offer').length >= 3 && res.named('news').length === 1, 'the pulled messages');
  t.deepEqual(ids(res.named('news')), [log.id]);
  t.true(ids(res.named('offer')).includes(f1.id) && ids(res.named('offer')).includes(f2.id));
  t.deepEqual(
    ids(res.named('offer')).filter((id) => id !== own.messageId),
    [f1.id, f2.id],
    'in order',
  );
  await eventually(() => cluster.ackedIds().length === 2 && acked.length === 1, 'the acks');
  t.deepEqual(cluster.ackedIds(), [`${f1.id}|user:7|write`, `${f2.id}|token:tok-7|write`], 'the tenant message is a log: never acknowledged');
  t.true(cluster.acks.every((a) => a.connectionId === conn.id));
  t.like(acked[0], { messageId: own.messageId, kind: 'user', key: '7', by: 'write', complete: true });
  t.is(await qos.status(own.messageId), undefined, "removed from this node's store");
  t.deepEqual(errors, []);
});

test('ack by write, pulled from one peer on request (pullFrom)', async (t) => {
  const { qos, open, cluster, peerIds, errors } = setup(t);
  const { res } = open({ user: user7 });
  open({ user: {} }); // anonymous: has no queue to pull
  const f1 = message(peerIds.next(), 'user', 'late', 'f1');
  cluster.pending = (_request, peerId) => (peerId === 'peer-1' ? [[f1]] : []);
  qos.pullFrom('peer-1');
  t.is((await res.event('late')).id, f1.id);
  await eventually(() => cluster.acks.length === 1, 'the ack');
  t.deepEqual(cluster.ackedIds(), [`${f1.id}|user:7|write`]);
  t.deepEqual(cluster.pulls.at(-1), {
    request: {
      refs: [
        { kind: 'user', key: '7' },
        { kind: 'token', key: 'tok-7' },
      ],
      logRefs: [],
    },
    peerId: 'peer-1',
  });
  t.is(cluster.pulls.length, 2, 'one pull on open, one from pullFrom; none for the anonymous stream');
  t.deepEqual(errors, []);
});

test('ack by write, forwarded durable send: written here, acknowledged to its owner', async (t) => {
  const { qos, open, cluster, acked, peerIds, errors } = setup(t);
  const noAck = open({ user: user7 });
  const withAck = open({ user: { id: 8, tenantId: 't1' }, params: { ack: '1' } });
  const send = (kind: DurableSend['kind'], keys: string[], event: string, listening = false): DurableSend => ({
    ...message(peerIds.next(), kind, event, '"x"', listening),
    keys,
  });

  const toUsers = send('user', ['7', '8'], 'offer');
  t.is(cluster.forwarded(toUsers), 2);
  t.is((await noAck.res.event('offer')).id, toUsers.id);
  t.is((await withAck.res.event('offer')).id, toUsers.id);
  const listening = send('user', ['7'], 'bell', true);
  t.is(cluster.forwarded(listening), 0, 'listening: not to a connection that does not listen');
  const tenant = send('tenant', ['t1'], 'news');
  t.is(cluster.forwarded(tenant), 2);
  await withAck.res.event('news');
  await eventually(() => cluster.acks.length > 0, 'the ack');
  t.deepEqual(cluster.ackedIds(), [`${toUsers.id}|user:7|write`], 'only the client without ack, only the queue message');
  t.is(cluster.acks[0]!.connectionId, noAck.conn.id);
  t.deepEqual(acked, []);
  t.is(qos.pendingCount(), 0, 'nothing of it is stored here');
  t.deepEqual(errors, []);
});

test("a forwarded send while the pull from its owner runs waits for it: each message once, in its owner's order", async (t) => {
  const { open, cluster, peerIds, errors } = setup(t);
  const [p1, p2, p3, p4, p5] = Array.from({ length: 5 }, (_, i) => ({ ...message(peerIds.next(), 'user', 'job', String(i + 1)), keys: ['7'] }));
  let answer!: (lists: DurableMessage[][]) => void;
  cluster.pending = () => new Promise((resolve) => (answer = resolve));
  const { res } = open({ user: user7 });
  await eventually(() => cluster.pulls.length === 1, 'the pull is on its way');
  // The owner forwards p2 (committed before it read, so also in its answer) and p4 (after).
  t.is(cluster.forwarded(p2!), 1, 'reached: left to the pull');
  t.is(cluster.forwarded(p4!), 1);
  t.deepEqual(res.named('job'), [], 'nothing written before the pull');
  answer([[p1!, p2!, p3!]]);
  await res.until(() => res.named('job').length >= 4, 'the pull, then what it held');
  // A forward of a message the pull answered arrives late: the pull wrote it.
  t.is(cluster.forwarded(p3!), 1);
  t.is(cluster.forwarded(p5!), 1, 'after the pull: written at once');
  await res.until(() => res.named('job').length >= 5, 'the live one');
  t.deepEqual(ids(res.named('job')), [p1!.id, p2!.id, p3!.id, p4!.id, p5!.id]);
  await eventually(() => cluster.ackedIds().length === 5, 'the acks by write');
  t.deepEqual(
    cluster.ackedIds(),
    [p1, p2, p3, p4, p5].map((p) => `${p!.id}|user:7|write`),
    'each acknowledged once',
  );
  t.deepEqual(errors, []);
});

test("this store's message delivered while its replay runs (a node sharing the Redis store sent it): after the replay, once", async (t) => {
  const { qos, open, cluster, errors } = setup(t);
  const pending = [];
  for (let i = 0; i < 3; i++) pending.push((await qos.sendByUserId(7, 'job', i)).messageId);
  const { res } = open({ user: user7 });
  // Its id is newer than every stored one: the replay's read cannot vouch for it.
  const sharer = new MessageIdGenerator(qos.tag);
  const during = { ...message(sharer.next(Date.now() + 60_000), 'user', 'job', '3'), keys: ['7'] };
  t.is(cluster.forwarded(during), 1, 'reached: held for the replay');
  t.deepEqual(res.named('job'), [], 'nothing written before the replay');
  await res.until(() => res.named('job').length >= 4, 'the replay, then what it held');
  t.is(cluster.forwarded({ ...message(pending[1]!, 'user', 'job', '1'), keys: ['7'] }), 1, 'a late copy of what the replay read');
  const after = { ...message(sharer.next(Date.now() + 60_000), 'user', 'job', '4'), keys: ['7'] };
  t.is(cluster.forwarded(after), 1);
  await res.until(() => res.named('job').length >= 5, 'the one after the replay');
  t.deepEqual(ids(res.named('job')), [...pending, during.id, after.id]);
  t.deepEqual(errors, []);
});

test('a send with a ttlMs that is no finite time is refused before anything is stored', async (t) => {
  const { qos } = setup(t);
  for (const ttlMs of [Infinity, 0, -5, Number.NaN]) {
    await t.throwsAsync(qos.sendByUserId(7, 'x', 1, { ttlMs }), { instanceOf: TypeError, message: /^ttlMs must be a positive finite number/ });
  }
  t.is(qos.pendingCount(), 0);
});

test('expiry removes messages past their time and fires qos-expired per pending queue target', async (t) => {
  const { qos, open, expired, errors } = setup(t);
  const short = await qos.sendByUserId([7, 8], 'x', 1, { ttlMs: 20 });
  const shortLog = await qos.sendByTenantId('t1', 'y', 1, { ttlMs: 20 });
  const kept = await qos.sendByUserId(7, 'z', 1);
  t.is(qos.pendingCount(), 3);
  const { createdAt, expiresAt } = (await qos.status(short.messageId))!;
  t.is(expiresAt - createdAt, 20);
  // Both short messages must be past their time (the second was sent a little later).
  const logExpiresAt = (await qos.status(shortLog.messageId))!.expiresAt;
  await eventually(() => Date.now() > Math.max(expiresAt, logExpiresAt) + 1, 'the expiry time');

  // Past its time, a message is not replayed even before it is removed.
  const late = open({ user: { id: 8 }, params: { ack: '1' } });
  t.deepEqual(
    late.res.events.map((e) => e.event),
    ['connect-finish'],
  );

  t.is(await qos.expireNow(), 2);
  t.deepEqual(
    expired.map((e) => [e.messageId, e.kind, e.key, e.event]).sort(),
    [
      [short.messageId, 'user', '7', 'x'],
      [short.messageId, 'user', '8', 'x'],
    ],
    'the tenant message is a log: removed without qos-expired',
  );
  t.is(await qos.status(short.messageId), undefined);
  t.is(await qos.status(shortLog.messageId), undefined);
  t.truthy(await qos.status(kept.messageId));
  t.is(qos.pendingCount(), 1);
  t.is(qos.pendingCount({ userId: 7 }), 1);
  t.is(qos.pendingCount({ userId: 8 }), 0);
  t.is(await qos.expireNow(), 0);
  t.is(expired.length, 2);
  t.deepEqual(errors, []);
});

test('Last-Event-ID resumes the retained log (all, tenant, channel) after the queue, for that client only', async (t) => {
  const { qos, open, cluster, errors } = setup(t);
  const a1 = await qos.sendAll('news', 'a1');
  const b1 = await qos.sendByTenantId('t1', 'news', 'b1');
  const c1 = await qos.sendByChannel('c1', 'news', 'c1');
  await qos.sendByTenantId('t2', 'news', 'd1');
  await qos.sendByChannel('c2', 'news', 'e1');
  const a2 = await qos.sendAll('news', 'a2');
  const q1 = await qos.sendByUserId(7, 'offer', 'q1');

  const resumed = open({ user: user7, params: { ack: '1', channel: 'c1', lastEventId: a1.messageId } });
  await resumed.res.event('news', 2);
  t.deepEqual(
    resumed.res.events.map((e) => e.event),
    ['connect-finish', 'offer', 'news', 'news', 'news'],
  );
  t.deepEqual(ids(resumed.res.events.slice(1)), [q1.messageId, b1.messageId, c1.messageId, a2.messageId]);
  t.deepEqual(cluster.pulls.at(-1)?.request, {
    refs: [
      { kind: 'user', key: '7' },
      { kind: 'token', key: 'tok-7' },
    ],
    logRefs: [
      { kind: 'all', key: '' },
      { kind: 'tenant', key: 't1' },
      { kind: 'channel', key: 'c1' },
    ],
    lastEventId: a1.messageId,
  });

  const anonymous = open({ user: { tenantId: 't2' }, params: { lastEventId: b1.messageId } });
  await anonymous.res.event('news', 1);
  t.deepEqual(
    anonymous.res.named('news').map((e) => e.data),
    ['d1', 'a2'],
    'a log is for anonymous clients too',
  );

  const fresh = open({ user: { id: 8, tenantId: 't1' }, params: { ack: '1', channel: 'c1' } });
  const bogus = open({ user: { id: 9, tenantId: 't1' }, params: { ack: '1', lastEventId: 'not-a-message-id' } });
  const end = await qos.sendAll('end', 'marker');
  for (const s of [fresh, bogus]) {
    t.is((await s.res.event('end')).id, end.messageId);
    t.deepEqual(s.res.named('news'), [], 'no resume without a valid Last-Event-ID');
  }
  t.deepEqual(errors, []);
});

test('listening-mode messages wait for the listener and are delivered once it is added', async (t) => {
  const { node, qos, open, cluster, acked, errors } = setup(t);
  const { conn, res } = open({ user: user7 });
  const bell = await qos.sendByUserId(7, 'bell', 'ring', { listening: true });
  t.is(bell.delivered, 0);
  t.is(qos.pendingCount({ userId: 7 }), 1);
  const other = open({ user: user7, params: { ack: '1' } });
  t.deepEqual(other.res.named('bell'), [], 'not replayed to a connection that does not listen');

  node.changeListeners(conn, ['bell'], true);
  t.is((await res.event('bell')).id, bell.messageId);
  await eventually(() => acked.length === 1, 'qos-acked');
  t.like(acked[0], { messageId: bell.messageId, by: 'write', connectionId: conn.id });
  t.is(qos.pendingCount({ userId: 7 }), 0);
  t.deepEqual(cluster.pulls.at(-1)?.request, {
    refs: [
      { kind: 'user', key: '7' },
      { kind: 'token', key: 'tok-7' },
    ],
    logRefs: [],
    events: ['bell'],
  });
  const pulls = cluster.pulls.length;
  node.changeListeners(conn, ['bell'], true);
  t.is(cluster.pulls.length, pulls, 'nothing new to pull when no listener was added');
  t.is(res.named('bell').length, 1);
  t.deepEqual(errors, []);
});

test('a replay to a slow reader waits for it to read, then writes the rest (small writeBufferLimit)', async (t) => {
  const { qos, open, errors } = setup(t, { hub: { writeBufferLimit: 4096 } });
  const sent = [];
  for (let i = 0; i < 20; i++) sent.push((await qos.sendByUserId(7, 'offer', 'x'.repeat(200))).messageId);
  const { conn, res } = open({ user: user7, params: { ack: '1' }, res: new FakeResponse().slow() });
  await eventually(() => conn.bufferedAmount > 2048, 'the replay waiting for the reader');
  t.false(conn.closed, 'the replay never trips the slow-reader limit');
  res.resume();
  await res.event('offer', 19);
  const live = await qos.sendByUserId(7, 'offer', 'live');
  t.is(live.delivered, 1);
  await res.event('offer', 20);
  t.deepEqual(ids(res.named('offer')), [...sent, live.messageId]);
  t.deepEqual(errors, []);
});

test('without a store, Qos only serves the messages its peers own', async (t) => {
  const { qos, open, cluster, acked, peerIds, errors } = setup(t, { qos: false });
  t.false(qos.hasStore);
  t.is(qos.tag, undefined);
  await t.throwsAsync(qos.sendByUserId(7, 'x'), { instanceOf: SseQosDisabledError });
  await t.throwsAsync(qos.sendAll('x'), { instanceOf: SseQosDisabledError });
  await t.throwsAsync(qos.sendByTenantId('t1', 'x'), { instanceOf: SseQosDisabledError });
  await t.throwsAsync(() => qos.status(peerIds.next()), { instanceOf: SseQosDisabledError });
  await t.throwsAsync(() => qos.list({}, 0, 10), { instanceOf: SseQosDisabledError });
  t.is(await qos.expireNow(), 0);
  t.is(qos.pendingCount(), 0);
  t.deepEqual(await cluster.served!.pendingFor({ refs: [{ kind: 'user', key: '7' }], logRefs: [] }, 100), []);
  t.deepEqual(cluster.sends, []);

  const f1 = message(peerIds.next(), 'user', 'offer', 'f1');
  const f2 = message(peerIds.next(), 'token', 'offer', 'f2');
  cluster.pending = () => [[f1, f2]];
  const noAck = open({ user: user7 });
  await noAck.res.event('offer', 1);
  t.deepEqual(ids(noAck.res.named('offer')), [f1.id, f2.id]);
  await eventually(() => cluster.ackedIds().length === 2, 'the acks');
  t.deepEqual(cluster.ackedIds(), [`${f1.id}|user:7|write`, `${f2.id}|token:tok-7|write`]);

  const withAck = open({ user: { id: 8 }, params: { ack: '1' } });
  const f3 = peerIds.next();
  t.is(await qos.ack(withAck.conn, [f3]), 1);
  t.deepEqual(cluster.ackedIds().slice(2), [`${f3}|user:8|ack`]);

  const forwarded = { ...message(peerIds.next(), 'user', 'fwd', '1'), keys: ['7'] };
  t.is(cluster.forwarded(forwarded), 1);
  await eventually(() => cluster.ackedIds().length === 4, 'the forwarded ack');
  t.deepEqual(cluster.ackedIds().slice(3), [`${forwarded.id}|user:7|write`]);
  t.deepEqual(acked, [], 'nothing is removed here: there is no store');
  t.deepEqual(errors, []);
});

test('told to pull from a peer again and again while a pull from it is on its way: one more pull after it, not one per tell', async (t) => {
  const { qos, open, cluster, errors } = setup(t);
  open({ user: user7 });
  await eventually(() => cluster.pulls.length === 1, 'the pull on open');
  let answer!: () => void;
  const held = new Promise<DurableMessage[][]>((resolve) => (answer = () => resolve([])));
  cluster.pending = () => held;
  // A peer whose forwards fail tells this node after each failure.
  for (let i = 0; i < 5; i++) qos.pullFrom('peer-1');
  t.is(cluster.pulls.length, 2, 'one pull from peer-1 on its way');
  answer();
  await eventually(() => cluster.pulls.length === 3, 'one more once it is answered');
  await new Promise((resolve) => setImmediate(resolve));
  await held;
  await new Promise((resolve) => setImmediate(resolve));
  t.is(cluster.pulls.length, 3, 'and no other');
  t.deepEqual(errors, []);
});
