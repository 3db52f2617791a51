// Property-based test of what the Redis engine reads from its pub/sub channels
// (lib/cluster/redis-transport.ts; the envelope's check in redis-envelope.ts): anything
// published there by anyone who can reach the Redis (another app, a faulty node) is dropped or
// answered, never thrown from the subscriber (which would take the process down), and the node
// goes on answering its peers. A real redis-server on a free loopback port, started by the test.
import test from 'ava';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { createHub, type Hub } from '../../lib/index.js';
import { eventually } from '../helpers/cluster.js';
import { RedisServer, redisTest } from '../helpers/redis-server.js';

const { unavailable } = redisTest('property/redis-envelope.test.ts');
const serial = unavailable === undefined ? test.serial : test.skip;

const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(5, 'x', null, [], {}, ['a', 1], -1, 1.5, 2 ** 60, true, { __proto__: { polluted: 1 } }),
);
/** Envelopes, well-formed or not, with requests well-formed or not. */
const envelope = fc.oneof(
  fc.record(
    {
      k: fc.oneof(fc.constantFrom('q', 'a', 'bye'), anyValue),
      id: fc.oneof(fc.nat(), anyValue),
      from: fc.oneof(fc.constantFrom('ghost', ''), anyValue),
      to: fc.oneof(fc.constant(undefined), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), anyValue),
      ok: fc.oneof(fc.boolean(), anyValue),
      v: anyValue,
      e: anyValue,
      req: fc.oneof(
        fc.record({
          type: fc.constantFrom('hello', 'query', 'send', 'disconnect', 'member-state', 'nope'),
          name: anyValue,
          args: anyValue,
          items: anyValue,
          keys: anyValue,
        }),
        anyValue,
      ),
    },
    { requiredKeys: [] },
  ),
  anyValue,
);
const text = fc.oneof(
  envelope.map((e) => JSON.stringify(e) ?? 'null'),
  fc.string({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1')),
);

serial('anything published on the engine channels is dropped or answered: never thrown, and the node goes on', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const prefix = `prop:${randomBytes(4).toString('hex')}`;
  const hubs: Hub[] = [];
  t.teardown(async () => {
    for (const hub of hubs) await hub.close({ drainMs: 0 });
  });
  const errors: unknown[] = [];
  for (let i = 0; i < 2; i++) {
    const hub = createHub({ cluster: { redis: redis.url, redisPrefix: prefix, timeoutMs: 2000, healthIntervalMs: 500 } });
    hub.on('error', (err) => errors.push(err));
    hubs.push(hub);
    await hub.ready();
  }
  const [a, b] = hubs as [Hub, Hub];
  await eventually(() => a.cluster!.peers().length === 1 && b.cluster!.peers().length === 1, 'two nodes see each other', 10_000);
  const pub = new Redis(redis.url);
  t.teardown(() => void pub.disconnect());
  const channels = [`${prefix}:all`, `${prefix}:to:${a.cluster!.nodeId}`];
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...channels), text), { minLength: 1, maxLength: 8 }), async (messages) => {
      for (const [channel, message] of messages) await pub.publish(channel, message);
      // B's query travels after them on A's subscription: its answer means A read them all.
      const answer = await b.cluster!.query('connectionCount', []);
      t.deepEqual(answer.failed, [], JSON.stringify(messages));
      t.is(({} as { polluted?: unknown }).polluted, undefined);
    }),
    { numRuns: 150 },
  );
  t.deepEqual(await a.cluster!.query('connectionCount', []), { values: [0], failed: [] });
});
