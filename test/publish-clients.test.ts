// The publish API with real clients (issue 26): the curl, Python (standard library) and Java
// (java.net.http) programs that docs/publish-api.md shows, run from examples/publish/ against
// two real nodes (a LAN cluster over loopback with static peers, and the Redis engine on a
// real redis-server), publishing to users connected to different nodes. Then the keys:
// scopes, rotation, the rate limit and the body and batch limits. A client program that is
// not installed is skipped with a message (a failure under CI=true).
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { hashApiKey, type PublishKey, type SsePluginOptions } from '../lib/index.js';
import { eventually, introduce, SECRET } from './helpers/cluster.js';
import { RedisServer, redisUnavailable } from './helpers/redis-server.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const ci = process.env.CI === 'true' || process.env.CI === '1';
const EXAMPLES = path.join(import.meta.dirname, '..', 'examples', 'publish');
const FULL = 'publish-test-full-key-0123456789abcdef';
const KEYS: PublishKey[] = [{ id: 'full', hash: hashApiKey(FULL) }];

/** Whether a program is on the PATH; prints why a client is skipped (a failure under CI). */
function have(t: ExecutionContext, program: string): boolean {
  if (spawnSync('sh', ['-c', `command -v ${program}`]).status === 0) return true;
  const why = `# publish-clients.test.ts: ${program} is not installed: its client is skipped`;
  console.log(ci ? `${why} (CI counts this as a failure)` : why);
  if (ci) t.fail(`${program} is required under CI`);
  return false;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client program with the node's URL and a key; bounded in time. */
function run(command: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: EXAMPLES, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const curl = (s: StartedPlugin, key: string): Promise<Ran> => run('sh', ['publish.sh'], { SSE_URL: s.base, SSE_API_KEY: key });
const python = (s: StartedPlugin, key: string, extra: Record<string, string> = {}): Promise<Ran> =>
  run('python3', ['publish.py'], { SSE_URL: s.base, SSE_API_KEY: key, ...extra });
const java = (s: StartedPlugin, key: string): Promise<Ran> => run('java', ['Publish.java'], { SSE_URL: s.base, SSE_API_KEY: key }, 120_000);

/** The JSON a client printed (its last non-empty line, or the given one). */
function answerOf(ran: Ran, line = -1): any {
  const lines = ran.stdout.split('\n').filter((l) => l.trim() !== '');
  return JSON.parse(lines.at(line)!);
}

async function lanPair(t: ExecutionContext, options: Partial<SsePluginOptions> = {}): Promise<[StartedPlugin, StartedPlugin]> {
  const nodes: StartedPlugin[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await startPlugin(t, {
      cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: 3000, healthIntervalMs: 100 },
      qos: { file: ':memory:' },
      publish: { keys: KEYS },
      ...options,
    });
    await s.plugin.hub.ready();
    nodes.push(s);
  }
  introduce(nodes.map((n) => n.plugin.hub));
  for (const n of nodes) await eventually(() => n.plugin.hub.cluster!.peers().length === 1, 'peers up');
  return [nodes[0]!, nodes[1]!];
}

async function redisPair(t: ExecutionContext): Promise<[StartedPlugin, StartedPlugin]> {
  const redis = await RedisServer.start(t, { aof: false });
  const nodes: StartedPlugin[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await startPlugin(t, {
      cluster: { redis: redis.url, timeoutMs: 3000, healthIntervalMs: 500 },
      qos: { redis: redis.url },
      publish: { keys: KEYS },
    });
    await s.plugin.hub.ready();
    nodes.push(s);
  }
  for (const n of nodes) await eventually(() => n.plugin.hub.cluster!.peers().length === 1, 'peers up', 10_000);
  return [nodes[0]!, nodes[1]!];
}

/** The three clients publish on either node to user 7 on `a` and user 8 on `b`. */
async function threeClients(t: ExecutionContext, a: StartedPlugin, b: StartedPlugin): Promise<void> {
  const seven = await RawStream.open(t, `${a.base}/connect?access-token=7`);
  const eight = await RawStream.open(t, `${b.base}/connect?access-token=8`);
  // The streams are known cluster-wide before anyone publishes to them (the Redis directory is written asynchronously).
  await eventually(async () => (await a.plugin.hub.isOnline(8)) && (await b.plugin.hub.isOnline(7)), 'both users online everywhere');

  if (have(t, 'curl')) {
    const ran = await curl(a, FULL);
    t.is(ran.code, 0, ran.stderr);
    t.deepEqual(answerOf(ran), { delivered: 2 });
    for (const s of [seven, eight]) t.deepEqual(JSON.parse((await s.next('invoice-paid')).data), { invoice: 1042 });
  }
  if (have(t, 'python3')) {
    const ran = await python(b, FULL);
    t.is(ran.code, 0, ran.stderr);
    const answer = answerOf(ran);
    t.is(answer.delivered, 2);
    t.is(typeof answer.messageId, 'string');
    for (const s of [seven, eight]) {
      const got = await s.next('invoice-paid');
      t.is(got.id, answer.messageId, 'the durable message, with its id');
    }
  }
  if (have(t, 'java')) {
    const ran = await java(a, FULL);
    t.is(ran.code, 0, ran.stderr);
    t.deepEqual(answerOf(ran, 0), { delivered: 2, failed: 0, results: [{ delivered: 1 }, { delivered: 1 }] });
    t.deepEqual(answerOf(ran, 1), { online: { '7': true, '8': true } });
    t.deepEqual(JSON.parse((await seven.next('invoice-paid')).data), { invoice: 1042 });
    t.deepEqual(JSON.parse((await eight.next('invoice-paid')).data), { invoice: 1043 });
  }
}

/**
 * The Python client (a durable publish with an idempotencyKey) run 3 times with the same key,
 * the n-th run on `via[n % via.length]`, then a batch retried with a key of its own: each is
 * stored once (in the store of the node that took it) and delivered once to user 7 on `a` and
 * user 8 on `b`, and every answer carries the first send's messageId; the first says on how many
 * nodes it is committed (`copies`: 2 on the LAN engine's SQLite stores, 1 with Redis), a retry 1.
 */
async function retriedDurable(t: ExecutionContext, a: StartedPlugin, b: StartedPlugin, via: StartedPlugin[], copies: number): Promise<void> {
  const seven = await RawStream.open(t, `${a.base}/connect?access-token=7&ack=1`);
  const eight = await RawStream.open(t, `${b.base}/connect?access-token=8&ack=1`);
  await eventually(async () => (await a.plugin.hub.isOnline(8)) && (await b.plugin.hub.isOnline(7)), 'both users online everywhere');
  const unique = `${process.pid}-${Date.now()}`;
  const ids: string[] = [];
  if (have(t, 'python3')) {
    const answers = [];
    for (let i = 0; i < 3; i++) {
      const ran = await python(via[i % via.length]!, FULL, { IDEMPOTENCY_KEY: `invoice-1042-paid-${unique}` });
      t.is(ran.code, 0, ran.stderr);
      answers.push(answerOf(ran));
    }
    const id = answers[0].messageId as string;
    t.is(typeof id, 'string');
    t.deepEqual(answers, [
      { delivered: 2, messageId: id, copies },
      { delivered: 0, messageId: id, copies: 1 },
      { delivered: 0, messageId: id, copies: 1 },
    ]);
    ids.push(id);
  }
  // The batch route passes the key too.
  const batch = (node: StartedPlugin): Promise<any> =>
    fetch(`${node.base}/publish/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${FULL}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { target: 'user', keys: ['7', '8'], event: 'invoice-paid', data: { invoice: 1043 }, durable: true, idempotencyKey: `batch-${unique}` },
        ],
      }),
    }).then((r) => r.json());
  const batches = [];
  for (let i = 0; i < 3; i++) batches.push(await batch(via[i % via.length]!));
  const batchId = batches[0].results[0].messageId as string;
  t.deepEqual(
    batches.map((r) => r.results[0]),
    [
      { delivered: 2, messageId: batchId, copies },
      { delivered: 0, messageId: batchId, copies: 1 },
      { delivered: 0, messageId: batchId, copies: 1 },
    ],
  );
  ids.push(batchId);
  // Stored once: the streams ack nothing, so every message is still in the store of the node that took it.
  for (const user of ['7', '8']) {
    const listed = await via[0]!.plugin.hub.qos.list({ userId: user }, 0, 10);
    t.deepEqual(listed.items.map((m) => m.message.id).sort(), [...ids].sort(), `user ${user}: each message stored once`);
  }
  // Delivered once: a live marker after the retries; once it is here, a second copy would be too.
  const marker = await fetch(`${via[0]!.base}/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${FULL}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target: 'user', keys: ['7', '8'], event: 'marker' }),
  });
  t.is(marker.status, 200);
  for (const s of [seven, eight]) {
    await s.next('marker');
    t.deepEqual(
      s.events.filter((e) => e.event === 'invoice-paid').map((e) => e.id),
      ids,
      'each message delivered once',
    );
  }
}

test('LAN cluster: curl, Python and Java publish to users on two nodes', async (t) => {
  t.timeout(180_000);
  const [a, b] = await lanPair(t);
  await threeClients(t, a, b);
});

const redisMissing = redisUnavailable();
if (redisMissing !== undefined)
  console.log(`# publish-clients.test.ts: Redis test skipped: ${redisMissing}${ci ? ' (CI counts this skip as a failure)' : ''}`);
(redisMissing === undefined ? test : test.skip)('Redis engine: curl, Python and Java publish to users on two nodes', async (t) => {
  t.timeout(180_000);
  const [a, b] = await redisPair(t);
  await threeClients(t, a, b);
});

test('LAN cluster (SQLite per node): a durable publish retried on the same node with its idempotencyKey is stored and delivered once', async (t) => {
  t.timeout(120_000);
  const [a, b] = await lanPair(t);
  await retriedDurable(t, a, b, [a], 2);
});

(redisMissing === undefined ? test : test.skip)(
  'Redis engine: a durable publish retried through two nodes with its idempotencyKey is stored and delivered once',
  async (t) => {
    t.timeout(120_000);
    const [a, b] = await redisPair(t);
    await retriedDurable(t, a, b, [a, b], 1);
  },
);

test('a scoped key is refused outside its scope (403), and nothing is sent or stored', async (t) => {
  const liveOnly = 'publish-test-live-only-key-0123456789';
  const [a, b] = await lanPair(t, {
    publish: { keys: [...KEYS, { id: 'live-users', hash: hashApiKey(liveOnly), scope: { targets: ['user'], durable: false, read: false } }] },
  });
  const eight = await RawStream.open(t, `${b.base}/connect?access-token=8`);
  await eventually(() => a.plugin.hub.isOnline(8), 'user 8 online on a');
  if (have(t, 'python3')) {
    // The documented Python client publishes durable: this key may not.
    const ran = await python(a, liveOnly);
    t.is(ran.code, 1);
    t.regex(ran.stderr, /^403 .*ERR_SSE_FORBIDDEN.*may not publish durable/);
    t.is((await a.plugin.hub.qos.list({ userId: '8' }, 0, 10)).total, 0, 'nothing stored');
  }
  const post = (body: unknown, url = `${a.base}/publish`): Promise<Response> =>
    fetch(url, { method: 'POST', headers: { authorization: `Bearer ${liveOnly}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const tenant = await post({ target: 'tenant', keys: ['t1'], event: 'refused', data: 1 });
  t.is(tenant.status, 403);
  t.is(((await tenant.json()) as { code: string }).code, 'ERR_SSE_FORBIDDEN');
  // A batch with one message out of scope sends none of it.
  const batch = await post(
    {
      messages: [
        { target: 'user', keys: ['8'], event: 'refused', data: 2 },
        { target: 'all', event: 'refused', data: 3 },
      ],
    },
    `${a.base}/publish/batch`,
  );
  t.is(batch.status, 403);
  const read = await fetch(`${a.base}/publish/online?userId=8`, { headers: { authorization: `Bearer ${liveOnly}` } });
  t.is(read.status, 403, 'read: false');
  // In scope: it goes, and it is the first event the user gets.
  t.is((await post({ target: 'user', keys: ['8'], event: 'allowed', data: 4 })).status, 200);
  t.is((await eight.next('allowed')).data, '4');
  t.deepEqual(
    eight.events.map((e) => e.event).filter((e) => e !== 'connect-finish'),
    ['allowed'],
  );
});

test('a rotated key: the new one works as soon as it is added, the old one is refused (401) once removed', async (t) => {
  const oldKey = 'publish-test-old-key-0123456789abcdef';
  const newKey = 'publish-test-new-key-0123456789abcdef';
  const [a] = await lanPair(t, { publish: { keys: [{ id: 'v1', hash: hashApiKey(oldKey) }] } });
  await RawStream.open(t, `${a.base}/connect?access-token=7`);
  if (!have(t, 'curl')) return;
  t.is((await curl(a, oldKey)).code, 0);
  t.not((await curl(a, newKey)).code, 0, 'not known yet');
  a.plugin.setPublishKeys([
    { id: 'v1', hash: hashApiKey(oldKey) },
    { id: 'v2', hash: hashApiKey(newKey) },
  ]);
  t.is((await curl(a, oldKey)).code, 0, 'both work while the callers move');
  t.is((await curl(a, newKey)).code, 0);
  a.plugin.setPublishKeys([{ id: 'v2', hash: hashApiKey(newKey) }]);
  const refused = await curl(a, oldKey);
  t.not(refused.code, 0);
  t.regex(refused.stdout, /ERR_SSE_UNAUTHORIZED/);
  t.is((await curl(a, newKey)).code, 0);
  // A bad list is refused whole: the keys stay as they were.
  t.throws(() => a.plugin.setPublishKeys([{ id: 'v3', hash: 'not-a-hash' }]), { instanceOf: TypeError, message: /64 lowercase hex/ });
  t.is((await curl(a, newKey)).code, 0);
});

test('the rate limit answers 429 with Retry-After and sends nothing of the refused request', async (t) => {
  const slow = 'publish-test-slow-key-0123456789abcdef';
  const [a] = await lanPair(t, { publish: { keys: [{ id: 'slow', hash: hashApiKey(slow), rate: { messages: 2, windowMs: 60_000 } }] } });
  const seven = await RawStream.open(t, `${a.base}/connect?access-token=7`);
  if (have(t, 'curl')) {
    t.is((await curl(a, slow)).code, 0);
    t.is((await curl(a, slow)).code, 0);
    const third = await curl(a, slow);
    t.not(third.code, 0);
    t.regex(third.stdout, /ERR_SSE_RATE_LIMITED/);
  }
  const res = await fetch(`${a.base}/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${slow}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target: 'user', keys: ['7'], event: 'late', data: 1 }),
  });
  t.is(res.status, 429);
  const retryAfter = Number(res.headers.get('retry-after'));
  t.true(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
  t.false(
    seven.events.some((e) => e.event === 'late'),
    'the refused publish was not sent',
  );
});

test('body and batch limits: 413, and nothing of a refused batch is sent; a bad key is 401 before its body', async (t) => {
  const [a] = await lanPair(t, { publish: { keys: KEYS, maxBodyBytes: 2000, maxBatch: 3 } });
  const seven = await RawStream.open(t, `${a.base}/connect?access-token=7`);
  const post = (body: unknown, url: string, key = FULL): Promise<Response> =>
    fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const big = await post({ target: 'user', keys: ['7'], event: 'big', data: 'x'.repeat(3000) }, `${a.base}/publish`);
  t.is(big.status, 413);
  const four = Array.from({ length: 4 }, (_, i) => ({ target: 'user', keys: ['7'], event: 'many', data: i }));
  t.is((await post({ messages: four }, `${a.base}/publish/batch`)).status, 413);
  t.is((await post({ messages: four.slice(0, 3) }, `${a.base}/publish/batch`)).status, 200);
  await seven.until(() => seven.events.filter((e) => e.event === 'many').length >= 3, 'the batch');
  t.deepEqual(
    seven.events.filter((e) => e.event === 'many').map((e) => e.data),
    ['0', '1', '2'],
    'only the accepted batch, in order',
  );
  const malformed = await post(
    {
      messages: [
        { target: 'user', keys: ['7'], event: 'ok' },
        { target: 'nobody', event: 'x' },
      ],
    },
    `${a.base}/publish/batch`,
  );
  t.is(malformed.status, 400);
  t.is((await post({ target: 'user', keys: ['7'], event: 'x' }, `${a.base}/publish`, 'wrong-key-0123456789')).status, 401);
});

test('hashApiKey is what `printf %s "$SECRET" | sha256sum` prints', (t) => {
  const ran = spawnSync('sh', ['-c', 'printf %s "$SECRET" | sha256sum'], { env: { ...process.env, SECRET: FULL }, encoding: 'utf8' });
  if (ran.status !== 0) return t.pass('sha256sum is not installed');
  t.is(ran.stdout.split(' ')[0], hashApiKey(FULL));
});

test('docs/publish-api.md shows the client programs this test runs, verbatim', (t) => {
  const doc = readFileSync(path.join(import.meta.dirname, '..', 'docs', 'publish-api.md'), 'utf8');
  for (const [file, lang] of [
    ['publish.sh', 'sh'],
    ['publish.py', 'python'],
    ['Publish.java', 'java'],
  ] as const) {
    const source = readFileSync(path.join(EXAMPLES, file), 'utf8').trimEnd();
    t.true(doc.includes('```' + lang + '\n' + source + '\n```'), `${file} is in the doc as it is in examples/publish`);
  }
});

test('off by default (404); setPublishKeys turns it on at runtime, and an empty list off again', async (t) => {
  const s = await startPlugin(t);
  const post = (): Promise<number> =>
    fetch(`${s.base}/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${FULL}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'all', event: 'x' }),
    }).then((r) => r.status);
  t.is(await post(), 404);
  s.plugin.setPublishKeys(KEYS);
  t.is(await post(), 200);
  s.plugin.setPublishKeys([]);
  t.is(await post(), 404);
});

test("a bad API key gets the API's 401, not the app's onUnauthorized (a login redirect for pages)", async (t) => {
  const s = await startPlugin(t, {
    publish: { keys: KEYS },
    onUnauthorized: (ctx) => {
      ctx.status = 302;
      ctx.redirect('/login');
    },
  });
  const res = await fetch(`${s.base}/publish`, {
    method: 'POST',
    redirect: 'manual',
    headers: { authorization: 'Bearer wrong-key-0123456789', 'content-type': 'application/json' },
    body: '{"target":"all","event":"x"}',
  });
  t.is(res.status, 401);
  t.is(((await res.json()) as { code: string }).code, 'ERR_SSE_UNAUTHORIZED');
  t.is((await fetch(`${s.base}/connect/users.json`, { redirect: 'manual' })).status, 302, 'pages still get the hook');
});
