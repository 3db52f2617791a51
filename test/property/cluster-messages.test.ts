// Property-based tests of the requests between nodes (lib/cluster/messages.ts, checked by
// lib/cluster/request-check.ts before Cluster acts on them): every request a node makes passes
// the check unchanged; any other request, sent to a live node over the in-process bus, is
// answered or refused whole with 400 ERR_SSE_BAD_REQUEST, never another error, never half-run
// (the node's connections are as they were), and no prototype changes. Every kind of the union
// is generated (`requests` is typed over its `type`: a new kind fails the type-check here), and
// the live node answers every kind: a recovery window, and for the durable kinds a SQLite store
// that keeps peers' copies.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { Cluster } from '../../lib/cluster/cluster.js';
import { DurableCluster } from '../../lib/cluster/durable-cluster.js';
import { MemoryBus } from '../../lib/cluster/memory-transport.js';
import type { ClusterRequest, WindowAnswer } from '../../lib/cluster/messages.js';
import { checkClusterRequest } from '../../lib/cluster/request-check.js';
import { WindowCluster } from '../../lib/cluster/window-recovery.js';
import { SseBadRequestError } from '../../lib/core/errors.js';
import { formatWindowId, newEpoch } from '../../lib/core/window-id.js';
import { resolveHubOptions } from '../../lib/hub-options.js';
import type { TargetRef } from '../../lib/core/targets.js';
import { LocalNode } from '../../lib/local/local-node.js';
import { resolveRecovery } from '../../lib/local/recovery-options.js';
import { RecoveryWindow } from '../../lib/local/recovery-window.js';
import { Qos } from '../../lib/qos/qos.js';
import { openStream } from '../helpers/fake-stream.js';

const text = fc.string({ maxLength: 12 });
const texts = fc.array(text, { maxLength: 4 });
const field = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/[\r\n\0]/.test(s));
const sendKind = fc.constantFrom('user', 'token', 'tenant', 'channel', 'all', 'connection' as const);
const targetKind = fc.constantFrom('user', 'token', 'tenant', 'channel', 'all' as const);
const targetRef = fc.record({ kind: targetKind, key: text });
/** The owners (store tags) of the copies generated: a probe pulls their copies after each request. */
const COPY_OWNERS = ['0badc0de', 'feedf00d'];
const NOW = Date.now();
const pending = fc.record(
  {
    refs: fc.array(targetRef, { maxLength: 3 }),
    logRefs: fc.array(targetRef, { maxLength: 3 }),
    lastEventId: text,
    events: texts,
    copiesOf: fc.oneof(fc.constantFrom(...COPY_OWNERS), text),
  },
  { requiredKeys: ['refs', 'logRefs'] },
);
const query = fc.oneof(
  fc.record({
    name: fc.constantFrom('userIds', 'users', 'accessTokens', 'tenantIds', 'channels', 'connectionCount', 'connectionIds'),
    args: fc.constant([]),
  }),
  fc.record({ name: fc.constantFrom('isOnline', 'user', 'connectionById', 'presence', 'channelsOf'), args: fc.tuple(text) }),
  fc.record({ name: fc.constant('userIdsListening'), args: fc.tuple(text, fc.option(text, { nil: null })) }),
  fc.record({
    name: fc.constant('connections'),
    args: fc.tuple(
      fc.record({ userId: text, tenantId: text, accessToken: text, channel: text, clientId: text, listening: text }, { requiredKeys: [] }),
    ),
  }),
);

/** A durable message id: 26 hex digits, the last 8 its owner's tag (a few owners, so that probes find their copies). */
const messageId = fc.tuple(fc.stringMatching(/^[0-9a-f]{18}$/), fc.constantFrom(...COPY_OWNERS)).map(([head, tag]) => head + tag);
const ackedBy = fc.constantFrom('ack', 'write' as const);
const ackItem = fc.record({ messageId: text, targets: fc.array(targetRef, { maxLength: 2 }) });
/** A time around now (handed-off windows and copies are judged against the clock). */
const ms = fc.integer({ min: -200_000, max: 5_000 }).map((d) => NOW + d);
const lives = fc.dictionary(text, fc.option(ms, { nil: null }), { maxKeys: 3 });
const handedSend = <T>(last: fc.Arbitrary<T>) => fc.tuple(ms, sendKind, texts, text, fc.boolean(), last);

type RequestType = ClusterRequest['type'];
type RequestOf<T extends RequestType> = Extract<ClusterRequest, { type: T }>;

/**
 * Every kind of request, as nodes make them: one arbitrary per `type` of the union, so that a
 * kind added to messages.ts fails the type-check here until it is generated too.
 */
const requests: { [T in RequestType]: fc.Arbitrary<RequestOf<T>> } = {
  hello: fc.constant({ type: 'hello' as const }),
  send: fc.record(
    {
      type: fc.constant('send' as const),
      items: fc.array(
        fc.record(
          {
            kind: sendKind,
            keys: texts,
            event: field,
            data: fc.string(),
            listening: fc.boolean(),
            id: fc.option(field, { nil: undefined }),
            wid: fc.option(field, { nil: undefined }),
          },
          { requiredKeys: ['kind', 'keys', 'event', 'data', 'listening'] },
        ),
        { maxLength: 3 },
      ),
      deadline: fc.integer(),
    },
    { requiredKeys: ['type', 'items'] },
  ),
  query: query.map((q) => ({ type: 'query' as const, ...q }) as RequestOf<'query'>),
  disconnect: fc.record(
    {
      type: fc.constant('disconnect' as const),
      kind: sendKind,
      keys: texts,
      reconnect: fc.boolean(),
      reason: fc.constantFrom('kick', 'client', 'evicted' as const),
      record: fc.record({ sessionDuration: fc.nat(), duration: fc.nat() }, { requiredKeys: [] }),
    },
    { requiredKeys: ['type', 'kind', 'keys', 'reconnect', 'reason'] },
  ),
  duration: fc.record({ type: fc.constant('duration' as const), kind: sendKind, keys: texts, seconds: fc.nat() }),
  'clear-duration': fc.record({ type: fc.constant('clear-duration' as const), kind: sendKind, keys: texts }),
  'keep-duration': fc.record({
    type: fc.constant('keep-duration' as const),
    kind: fc.constantFrom('user', 'token' as const),
    keys: texts,
    seconds: fc.option(fc.nat(), { nil: null }),
  }),
  members: fc.constant({ type: 'members' as const }),
  siblings: fc.record({ type: fc.constant('siblings' as const), clientKey: text }),
  listeners: fc.record({ type: fc.constant('listeners' as const), connectionId: text, names: texts, add: fc.boolean() }),
  channels: fc.record({
    type: fc.constant('channels' as const),
    kind: fc.constantFrom('connection', 'user', 'token' as const),
    keys: texts,
    channels: texts,
    join: fc.boolean(),
  }),
  'connection-channels': fc.record({ type: fc.constant('connection-channels' as const), connectionId: text, channels: texts, join: fc.boolean() }),
  'member-state': fc.record({
    type: fc.constant('member-state' as const),
    items: fc.array(fc.record({ channel: text, userId: text, held: fc.boolean() }, { requiredKeys: ['channel', 'userId'] }), { maxLength: 3 }),
  }),
  'qos-pending': pending.map((p) => ({ type: 'qos-pending' as const, ...p })),
  'qos-pending-batch': fc.record({ type: fc.constant('qos-pending-batch' as const), requests: fc.array(pending, { maxLength: 3 }) }),
  'qos-pull-me': fc.record({ type: fc.constant('qos-pull-me' as const), tag: text }, { requiredKeys: ['type'] }),
  'qos-list': fc.record({
    type: fc.constant('qos-list' as const),
    filter: fc.record({ userId: text, accessToken: text, tenantId: text, channel: text, listeners: texts }, { requiredKeys: [] }),
    limit: fc.nat(),
  }),
  'qos-ack': fc.record({
    type: fc.constant('qos-ack' as const),
    items: fc.array(ackItem, { maxLength: 3 }),
    connectionId: text,
    by: ackedBy,
  }),
  window: fc.record({
    type: fc.constant('window' as const),
    // '-' resumes nothing (a peer coming up asks the epoch so); else a window id, or another id.
    from: fc.oneof(
      fc.constant('-'),
      field,
      fc.record({ epoch: fc.constant(newEpoch(NOW)), ms, seq: fc.nat({ max: 5 }), node: fc.stringMatching(/^[0-9a-f]{6}$/) }).map(formatWindowId),
    ),
    who: fc.record(
      { userId: text, accessToken: text, tenantId: text, channels: texts, listeners: texts },
      { requiredKeys: ['channels', 'listeners'] },
    ),
  }),
  'window-epoch': fc.constant({ type: 'window-epoch' as const }),
  'window-took': fc.record({ type: fc.constant('window-took' as const), wids: texts }),
  'window-handoff': fc.record({
    type: fc.constant('window-handoff' as const),
    parts: fc.array(
      fc.record(
        {
          self: text,
          node: text,
          start: ms,
          lives,
          droppedMs: fc.oneof(fc.constant(-1), ms),
          entries: fc.array(handedSend(fc.string({ maxLength: 40 })), { maxLength: 3 }),
          missed: fc.array(handedSend(texts), { maxLength: 2 }),
        },
        { requiredKeys: ['self', 'node', 'start', 'lives', 'droppedMs', 'entries'] },
      ),
      { maxLength: 2 },
    ),
  }),
  'qos-copy': fc.record({
    type: fc.constant('qos-copy' as const),
    items: fc.array(
      fc.record({
        id: messageId,
        kind: targetKind,
        keys: texts,
        event: field,
        data: fc.string(),
        listening: fc.boolean(),
        createdAt: ms,
        expiresAt: ms.map((t) => t + 300_000),
      }),
      { maxLength: 3 },
    ),
  }),
  'qos-copy-remove': fc.record(
    {
      type: fc.constant('qos-copy-remove' as const),
      items: fc.array(ackItem, { maxLength: 3 }),
      ids: fc.array(fc.oneof(messageId, text), { maxLength: 3 }),
      keep: fc.record({ connectionId: text, by: ackedBy }),
    },
    { requiredKeys: ['type', 'items', 'ids'] },
  ),
  'qos-copy-acks': fc.record({
    type: fc.constant('qos-copy-acks' as const),
    acks: fc.array(
      fc.record({
        messageId: fc.oneof(messageId, text),
        kind: fc.constantFrom('user', 'token' as const),
        key: text,
        connectionId: text,
        by: ackedBy,
      }),
      { maxLength: 3 },
    ),
  }),
  'qos-copy-held': fc.record({ type: fc.constant('qos-copy-held' as const), ids: fc.array(fc.oneof(messageId, text), { maxLength: 3 }) }),
  'qos-copy-acks-of': fc.record({ type: fc.constant('qos-copy-acks-of' as const), tag: fc.oneof(fc.constantFrom(...COPY_OWNERS), text) }),
};
const validRequest: fc.Arbitrary<ClusterRequest> = fc.oneof(...Object.values(requests));

test('every request a node makes passes the check, unchanged', (t) => {
  fc.assert(
    fc.property(validRequest, (request) => {
      const copy = structuredClone(request);
      t.is(checkClusterRequest(request), request);
      t.deepEqual(request, copy);
    }),
    { numRuns: 2000 },
  );
});

/** What a faulty peer may put where a field should be. */
const hostile = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    'abc',
    'user',
    'all',
    '',
    0,
    -1,
    1e308,
    NaN,
    true,
    null,
    undefined,
    [],
    ['a', 1],
    [null],
    {},
    { __proto__: { polluted: 1 } },
    [{}],
    ['x\ny'],
  ),
  fc.constantFrom('constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf').map((s) => s as unknown),
);
const fieldName = fc.oneof(
  fc.constantFrom(
    'type',
    'items',
    'kind',
    'keys',
    'name',
    'args',
    'reason',
    'record',
    'seconds',
    'connectionId',
    'names',
    'channels',
    'refs',
    'requests',
    'by',
    'from',
    'who',
    'parts',
    'lives',
    'entries',
    'missed',
    'droppedMs',
    'self',
    'start',
    'ids',
    'keep',
    'acks',
    'tag',
    'id',
    'wid',
    'createdAt',
    'expiresAt',
    'copiesOf',
    'messageId',
    'targets',
    '__proto__',
  ),
  fc.string({ maxLength: 6 }),
);

/** Every object and array of a request, itself first: where a mutation may land. */
function containers(value: unknown, out: object[] = []): object[] {
  if (typeof value === 'object' && value !== null) {
    out.push(value);
    for (const inner of Object.values(value)) containers(inner, out);
  }
  return out;
}

/**
 * A valid request with one field replaced by something hostile: half the time a field of the
 * request itself, else of any object within it, or an element of any array (a tuple's too, or
 * one past its end). Mostly a field the object has (each is checked), else any name.
 */
const mutated = fc.tuple(validRequest, fieldName, hostile, fc.nat(), fc.nat()).map(([request, name, value, at, which]) => {
  const out = structuredClone(request) as unknown as Record<string, unknown>;
  const all = containers(out);
  const target = at % 2 === 0 ? out : all[(at >> 1) % all.length]!;
  const own = Object.keys(target);
  const key = Array.isArray(target) ? String(which % (target.length + 1)) : which % 4 !== 0 && own.length > 0 ? own[which % own.length]! : name;
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
});
// Mostly mutations of valid requests (each kind's fields, at any depth); some arbitrary JSON.
const anyRequest = fc.oneof(
  { arbitrary: mutated, weight: 4 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
  { arbitrary: fc.record({ type: fc.oneof(fc.string(), hostile) }), weight: 1 },
);

interface Node {
  local: LocalNode;
  cluster: Cluster;
  qos: Qos;
  window: RecoveryWindow;
  close(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'sse-prop-cluster-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/**
 * A node as the hub wires one: a recovery window with its cluster side (`window*` requests), and
 * with `store`, a SQLite store of its own that keeps peers' copies (`qos-copy*`); else a relay.
 */
async function node(bus: MemoryBus, id: string, store = false): Promise<Node> {
  const local = new LocalNode(resolveHubOptions({}, '0.0.0'));
  local.clustered = true;
  local.on('error', () => undefined);
  const cluster = new Cluster(local, bus.transport(id), { timeoutMs: 500, group: 'prop' });
  cluster.on('error', () => undefined);
  const window = new RecoveryWindow(resolveRecovery(undefined, 1500)!);
  new WindowCluster(cluster, window, undefined);
  const options = store ? { file: join(dir, `${id}-${files++}.db`), replication: { copies: 2 } } : undefined;
  const qos = new Qos(local, options, new DurableCluster(cluster));
  qos.on('error', () => undefined);
  await cluster.start();
  return {
    local,
    cluster,
    qos,
    window,
    close: async () => {
      await local.close(0);
      await cluster.close();
      await qos.close();
    },
  };
}

/** What a request must not change when it is refused: every connection, its channels, listeners and online time. */
function snapshot(local: LocalNode): string {
  return JSON.stringify(
    local.query('connections', [{}]).map((c) => [c.id, c.channel, c.channels, c.listeners, c.sessionDuration]),
    (_k, v: unknown) => (v instanceof Set ? [...(v as Set<unknown>)] : v),
  );
}

test('any request to a live node: answered, or refused whole with 400 ERR_SSE_BAD_REQUEST; never another error, never a prototype change', async (t) => {
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
  await fc.assert(
    fc.asyncProperty(anyRequest, async (request) => {
      const bus = new MemoryBus();
      // A SQLite store (a file each run) only for the durable kinds: the other kinds never reach it.
      const type = typeof request === 'object' && request !== null ? (request as { type?: unknown }).type : undefined;
      const durable = typeof type === 'string' && type.startsWith('qos');
      const a = await node(bus, 'a', durable);
      const peer = await node(bus, 'peer');
      try {
        // What a malformed request could hit: users, tokens, channels, listeners, online time.
        for (const [id, token] of [
          ['u1', 't1'],
          ['abc', 'tok'],
          ['a', 'b'],
        ])
          openStream(a.local, { user: { id, accessToken: token }, params: { channel: 'room', listeners: 'bell,news', sessionDuration: '5' } });
        const before = snapshot(a.local);
        let refused = false;
        try {
          await bus.transport('peer').request('a', request as ClusterRequest, 500);
        } catch (err) {
          refused = true;
          t.true(err instanceof SseBadRequestError, `${String(err)} for ${JSON.stringify(request)}`);
        }
        if (refused) t.is(snapshot(a.local), before, `a refused request changed the node: ${JSON.stringify(request)}`);
        // The node still answers, also from what an accepted request left: handed-off windows, copies.
        const ask = (r: ClusterRequest): Promise<unknown> => bus.transport('peer').request('a', r, 500);
        t.true(Array.isArray(await ask({ type: 'query', name: 'userIds', args: [] })));
        const from = formatWindowId({ epoch: a.window.epoch, ms: Date.now() - 60_000, seq: 0, node: 'abcdef' });
        const who = { userId: 'u1', accessToken: 't1', channels: ['room'], listeners: ['bell', 'news'] };
        t.true(Array.isArray(((await ask({ type: 'window', from, who })) as WindowAnswer).frames));
        for (const copiesOf of durable ? COPY_OWNERS : []) {
          const refs: TargetRef[] = [{ kind: 'user', key: 'u1' }];
          const logRefs: TargetRef[] = (['all', 'tenant', 'channel'] as const).map((kind) => ({ kind, key: '' }));
          t.true(Array.isArray(await ask({ type: 'qos-pending', refs, logRefs, copiesOf })));
        }
        t.is(({} as { polluted?: unknown }).polluted, undefined);
      } finally {
        await a.close();
        await peer.close();
      }
    }),
    { numRuns: 3000 },
  );
  t.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoBefore);
});

test('what the property found: keys sent as a string are refused, not read letter by letter; a query named constructor is no query; a connection filter of other than strings, a listing limit that is no count are refused', async (t) => {
  const bus = new MemoryBus();
  const a = await node(bus, 'a');
  const peer = await node(bus, 'peer');
  t.teardown(async () => {
    await a.close();
    await peer.close();
  });
  const userA = openStream(a.local, { user: { id: 'a' } });
  const ask = (request: unknown): Promise<unknown> => bus.transport('peer').request('a', request as ClusterRequest, 500);
  await t.throwsAsync(ask({ type: 'disconnect', kind: 'user', keys: 'abc', reconnect: false, reason: 'kick' }), {
    instanceOf: SseBadRequestError,
    message: /keys/,
  });
  t.false(userA.conn.closed, "user 'a' is not user 'abc'");
  await t.throwsAsync(ask({ type: 'query', name: 'constructor', args: [] }), { instanceOf: SseBadRequestError, message: /name/ });
  await t.throwsAsync(ask({ type: 'no-such-request' }), { instanceOf: SseBadRequestError, message: /type/ });
  // A connection filter's fields are strings (the hub sends every key as one): another value threw a TypeError.
  await t.throwsAsync(ask({ type: 'query', name: 'connections', args: [{ userId: true }] }), {
    instanceOf: SseBadRequestError,
    message: /args\[0\]\.userId/,
  });
  await t.throwsAsync(ask({ type: 'query', name: 'connections', args: [{ channel: ['room'] }] }), {
    instanceOf: SseBadRequestError,
    message: /args\[0\]\.channel/,
  });
  t.is(((await ask({ type: 'query', name: 'connections', args: [{ userId: 'a' }] })) as unknown[]).length, 1);
  // A listing's limit is a count: a negative one is no limit to SQLite, a fraction a datatype mismatch.
  for (const limit of [-1, -5e-324, 0.5]) {
    await t.throwsAsync(ask({ type: 'qos-list', filter: {}, limit }), { instanceOf: SseBadRequestError, message: /limit/ });
  }
  t.like(await ask({ type: 'qos-list', filter: {}, limit: 10 }), { total: 0, items: [] });
  t.is(await ask({ type: 'disconnect', kind: 'user', keys: ['a'], reconnect: false, reason: 'kick' }), 1);
});
