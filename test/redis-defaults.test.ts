// Issue 21, findings 5 and 6, against a real redis-server (loopback, free port):
// - with Redis down, 503 answers carried the Redis client's raw error text (which can name
//   Redis's address); they now say it in our own words, and the text goes to the app's
//   `error` event with the error's `cause`;
// - two apps on one Redis that kept the default name shared `sse:<name>` and merged into one
//   cluster and one durable store without a word; the Redis engine now refuses to start
//   without a name the app chose (`name`, or the engine's own prefix / group).
import test from 'ava';
import Koa from 'koa';
import { createHub, ssePlugin } from '../lib/index.js';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { startPlugin, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('redis-defaults');
const ci = process.env.CI === 'true' || process.env.CI === '1';
const redisSerial = unavailable === undefined ? test.serial : test.skip;
if (unavailable !== undefined && ci) test('redis-server is available under CI', (t) => t.fail(unavailable));

/** An answer of ours: the code and our sentence, nothing a dependency wrote. */
const OUR_WORDS = 'A service this server depends on is unavailable: try again shortly';

redisSerial('Redis down: 503 answers say it in our words, never the Redis client’s text; that goes to the app’s error event', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const { base, plugin, errors } = await startPlugin(t, { qos: { redis: redis.url }, cluster: { redis: redis.url, timeoutMs: 500 } });
  await plugin.hub.ready();
  const stream = await RawStream.open(t, `${base}/connect?access-token=5&ack=1`);
  const sent = await plugin.hub.qos.sendByUserId(5, 'offer', 1);
  await stream.next('offer');
  await redis.stop();
  await eventually(async () => {
    try {
      await plugin.hub.qos.status(sent.messageId);
      return false;
    } catch {
      return true;
    }
  }, 'the client notices that Redis is gone');

  const answers = [
    await fetch(`${base}/connect/repositoryMessages.json?access-token=admin`),
    await fetch(`${base}/connect/ack.do?access-token=5`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ connectionId: stream.connectionId, ids: [sent.messageId] }),
    }),
  ];
  const reported = errors.filter((e) => (e as { code?: string }).code === 'ERR_SSE_REDIS_UNAVAILABLE');
  t.is(reported.length, answers.length, 'each failure reaches the app, once');
  // What the client library said (the error's cause), which the answers must not repeat.
  const causes = reported.map((e) => String((e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : ''));
  t.true(
    causes.every((c) => c.length > 0),
    'the reported error keeps the dependency’s text in its cause',
  );
  for (const res of answers) {
    const text = await res.text();
    t.is(res.status, 503, text);
    const body = JSON.parse(text);
    t.is(body.code, 'ERR_SSE_REDIS_UNAVAILABLE');
    t.is(body.message, OUR_WORDS);
    for (const raw of ['ECONNREFUSED', '127.0.0.1', String(redis.port), 'enableOfflineQueue', 'writeable', 'Connection is closed', ...causes]) {
      t.false(text.includes(raw), `the answer quotes "${raw}": ${text}`);
    }
  }
});

redisSerial('the Redis engine refuses to start under a name nobody chose; named apps on one Redis stay apart', async (t) => {
  const redis = await RedisServer.start(t, { aof: false });
  const url = redis.url;
  // The plugin's name comes from its base path; createHub's is `default`: neither was chosen.
  for (const options of [{ cluster: { redis: url } }, { qos: { redis: url } }, { cluster: { redis: url }, qos: { redis: url, redisPrefix: 'x' } }]) {
    t.throws(() => ssePlugin('/sse', { authenticate: tokenUser, ...options }), { instanceOf: TypeError, message: /needs a name of its own/ });
    t.throws(() => createHub(options), { instanceOf: TypeError, message: /needs a name of its own/ });
  }
  // A name, a group or a prefix of the engine's own is a choice.
  for (const options of [
    { name: 'shop', cluster: { redis: url }, qos: { redis: url } },
    { cluster: { redis: url, group: 'shop' } },
    { cluster: { redis: url, redisPrefix: 'shop:sse' } },
    { qos: { redis: url, redisPrefix: 'shop:qos' } },
  ]) {
    const hub = createHub(options);
    await hub.ready();
    await hub.close({ drainMs: 0 });
    t.pass();
  }

  // Two apps with names of their own on one Redis: no peers, no sends across.
  const node = async (name: string) => {
    const app = new Koa();
    const plugin = ssePlugin('/sse', { name, authenticate: tokenUser, cluster: { redis: url, healthIntervalMs: 200, timeoutMs: 500 } });
    app.use(plugin);
    t.teardown(() => plugin.close({ drainMs: 0 }));
    await plugin.hub.ready();
    return plugin;
  };
  const [shopA, shopB, blog] = [await node('shop'), await node('shop'), await node('blog')];
  await eventually(() => shopA.hub.cluster!.peers().length === 1 && shopB.hub.cluster!.peers().length === 1, 'the two shop nodes find each other');
  t.deepEqual(blog.hub.cluster!.peers(), [], 'the blog sees none of the shop');
  t.deepEqual(
    shopA.hub.cluster!.peers().map((p) => p.nodeId),
    [shopB.hub.cluster!.nodeId],
  );
});
