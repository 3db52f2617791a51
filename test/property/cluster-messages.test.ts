// Property-based tests of the requests between nodes (lib/cluster/messages.ts, checked by
// lib/cluster/request-check.ts before Cluster acts on them): every request a node makes passes
// the check unchanged; any other request, sent to a live node over the in-process bus, is
// answered or refused whole with 400 ERR_SSE_BAD_REQUEST, never another error, never half-run
// (the node's connections are as they were), and no prototype changes.
import test from 'ava';
import fc from 'fast-check';
import { Cluster } from '../../lib/cluster/cluster.js';
import { DurableCluster } from '../../lib/cluster/durable-cluster.js';
import { MemoryBus } from '../../lib/cluster/memory-transport.js';
import type { ClusterRequest } from '../../lib/cluster/messages.js';
import { checkClusterRequest } from '../../lib/cluster/request-check.js';
import { SseBadRequestError } from '../../lib/core/errors.js';
import { resolveHubOptions } from '../../lib/hub-options.js';
import { LocalNode } from '../../lib/local/local-node.js';
import { Qos } from '../../lib/qos/qos.js';
import { openStream } from '../helpers/fake-stream.js';

const text = fc.string({ maxLength: 12 });
const texts = fc.array(text, { maxLength: 4 });
const field = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/[\r\n\0]/.test(s));
const sendKind = fc.constantFrom('user', 'token', 'tenant', 'channel', 'all', 'connection' as const);
const targetRef = fc.record({ kind: fc.constantFrom('user', 'token', 'tenant', 'channel', 'all' as const), key: text });
const pending = fc.record(
  { refs: fc.array(targetRef, { maxLength: 3 }), logRefs: fc.array(targetRef, { maxLength: 3 }), lastEventId: text, events: texts },
  { requiredKeys: ['refs', 'logRefs'] },
);
const query = fc.oneof(
  fc.record({
    name: fc.constantFrom('userIds', 'users', 'accessTokens', 'tenantIds', 'channels', 'connectionCount', 'connectionIds'),
    args: fc.constant([]),
  }),
  fc.record({ name: fc.constantFrom('isOnline', 'user', 'connectionById', 'presence', 'channelsOf'), args: fc.tuple(text) }),
  fc.record({ name: fc.constant('userIdsListening'), args: fc.tuple(text, fc.option(text, { nil: null })) }),
  fc.record({ name: fc.constant('connections'), args: fc.tuple(fc.record({ userId: text, channel: text, listening: text }, { requiredKeys: [] })) }),
);

/** Every kind of request, as nodes make them. */
const validRequest: fc.Arbitrary<ClusterRequest> = fc.oneof(
  fc.constant({ type: 'hello' as const }),
  fc.record(
    {
      type: fc.constant('send' as const),
      items: fc.array(
        fc.record(
          { kind: sendKind, keys: texts, event: field, data: fc.string(), listening: fc.boolean(), id: fc.option(field, { nil: undefined }) },
          { requiredKeys: ['kind', 'keys', 'event', 'data', 'listening'] },
        ),
        { maxLength: 3 },
      ),
      deadline: fc.integer(),
    },
    { requiredKeys: ['type', 'items'] },
  ),
  query.map((q) => ({ type: 'query' as const, ...q }) as ClusterRequest),
  fc.record(
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
  fc.record({ type: fc.constant('duration' as const), kind: sendKind, keys: texts, seconds: fc.nat() }),
  fc.record({ type: fc.constant('clear-duration' as const), kind: sendKind, keys: texts }),
  fc.record({
    type: fc.constant('keep-duration' as const),
    kind: fc.constantFrom('user', 'token' as const),
    keys: texts,
    seconds: fc.option(fc.nat(), { nil: null }),
  }),
  fc.constant({ type: 'members' as const }),
  fc.record({ type: fc.constant('siblings' as const), clientKey: text }),
  fc.record({ type: fc.constant('listeners' as const), connectionId: text, names: texts, add: fc.boolean() }),
  fc.record({
    type: fc.constant('channels' as const),
    kind: fc.constantFrom('connection', 'user', 'token' as const),
    keys: texts,
    channels: texts,
    join: fc.boolean(),
  }),
  fc.record({ type: fc.constant('connection-channels' as const), connectionId: text, channels: texts, join: fc.boolean() }),
  fc.record({
    type: fc.constant('member-state' as const),
    items: fc.array(fc.record({ channel: text, userId: text, held: fc.boolean() }, { requiredKeys: ['channel', 'userId'] }), { maxLength: 3 }),
  }),
  pending.map((p) => ({ type: 'qos-pending' as const, ...p }) as ClusterRequest),
  fc.record({ type: fc.constant('qos-pending-batch' as const), requests: fc.array(pending, { maxLength: 3 }) }),
  fc.constant({ type: 'qos-pull-me' as const }),
  fc.record({
    type: fc.constant('qos-list' as const),
    filter: fc.record({ userId: text, accessToken: text, tenantId: text, channel: text, listeners: texts }, { requiredKeys: [] }),
    limit: fc.nat(),
  }),
  fc.record({
    type: fc.constant('qos-ack' as const),
    items: fc.array(fc.record({ messageId: text, targets: fc.array(targetRef, { maxLength: 2 }) }), { maxLength: 3 }),
    connectionId: text,
    by: fc.constantFrom('ack', 'write' as const),
  }),
);

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
    '__proto__',
  ),
  fc.string({ maxLength: 6 }),
);

/** A valid request with one field (top level, or of its first nested object) replaced by something hostile. */
const mutated = fc.tuple(validRequest, fieldName, hostile, fc.boolean()).map(([request, name, value, nested]) => {
  const out = structuredClone(request) as unknown as Record<string, unknown>;
  let target = out;
  if (nested) {
    const list = Object.values(out).find((v) => Array.isArray(v) && v.length > 0 && typeof v[0] === 'object' && v[0] !== null) as
      Record<string, unknown>[] | undefined;
    if (list !== undefined) target = list[0]!;
  }
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
  return out;
});
const anyRequest = fc.oneof(mutated, fc.jsonValue({ maxDepth: 3 }), fc.record({ type: fc.oneof(fc.string(), hostile) }));

interface Node {
  local: LocalNode;
  cluster: Cluster;
  qos: Qos;
  close(): Promise<void>;
}

async function node(bus: MemoryBus, id: string): Promise<Node> {
  const local = new LocalNode(resolveHubOptions({}, '0.0.0'));
  local.clustered = true;
  local.on('error', () => undefined);
  const cluster = new Cluster(local, bus.transport(id), { timeoutMs: 500, group: 'prop' });
  cluster.on('error', () => undefined);
  const qos = new Qos(local, undefined, new DurableCluster(cluster));
  qos.on('error', () => undefined);
  await cluster.start();
  return {
    local,
    cluster,
    qos,
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
      const a = await node(bus, 'a');
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
        // The node still answers.
        t.true(Array.isArray(await bus.transport('peer').request('a', { type: 'query', name: 'userIds', args: [] }, 500)));
        t.is(({} as { polluted?: unknown }).polluted, undefined);
      } finally {
        await a.close();
        await peer.close();
      }
    }),
    { numRuns: 400 },
  );
  t.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoBefore);
});

test('what the property found: keys sent as a string are refused, not read letter by letter; a query named constructor is no query', async (t) => {
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
  t.is(await ask({ type: 'disconnect', kind: 'user', keys: ['a'], reconnect: false, reason: 'kick' }), 1);
});
