import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { eventually, SECRET } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { postJson } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

interface RunningExample {
  origin: string;
  /** Waits for a line of its output that matches `pattern`; answers the match. */
  line: (pattern: RegExp) => Promise<RegExpExecArray>;
  stop: () => Promise<number | null>;
}

/** Starts `example/server.ts` as `npm start` does, on a random loopback port. */
async function startExample(t: import('ava').ExecutionContext, extraEnv: Record<string, string> = {}): Promise<RunningExample> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sse-example-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import=tsx', 'example/server.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', SSE_DATA_DIR: dataDir, ...extraEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const seen: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    seen.push(line);
    for (const w of waiters) w();
  });
  const line = (pattern: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        for (const l of seen) {
          const m = pattern.exec(l);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`example printed no line matching ${pattern}; got ${JSON.stringify(seen)}`));
        // A bound, not a speed: the examples start in parallel, with tsx, on a loaded machine.
      }, 60_000);
      waiters.add(check);
      check();
    });
  const origin = (await line(/listening on (http:\/\/[\d.]+:\d+)\//))[1]!;
  return {
    origin,
    line,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// Serial: three processes of its own start at once; alone they start in time on a loaded machine.
test.serial('the example with SSE_WORKERS=2: two workers on one port, each a node of the other; SIGTERM to the primary closes both', async (t) => {
  const { origin, line, stop } = await startExample(t, { SSE_WORKERS: '2' });
  // Each worker sees the other, for both systems, before any stream opens.
  await line(/^primary \d+: 2 workers on one port$/);
  for (const system of ['hr', 'hunter']) {
    await line(new RegExp(`^peer up \\(${system}\\): \\w+-w1$`));
    await line(new RegExp(`^peer up \\(${system}\\): \\w+-w2$`));
  }
  // Two pages of one user, on connections of their own: the primary hands them to both workers.
  const pages = [
    await RawStream.open(t, `${origin}/sse/hr/connect?access-token=7&reconnectOnClose=1`),
    await RawStream.open(t, `${origin}/sse/hr/connect?access-token=7&reconnectOnClose=1`),
  ];
  t.deepEqual(pages.map((p) => p.headers?.get('x-sse-server-id')?.replace(/.*-/, '')).sort(), ['w1', 'w2']);
  const sent = await postJson(`${origin}/api/notify?access-token=admin`, { userId: 7, event: 'bell', data: { count: 3 } });
  t.deepEqual(sent, { status: 200, body: { count: 2 } });
  for (const page of pages) await page.next('bell');
  t.is(await stop(), 0);
  for (const page of pages) t.like(JSON.parse((await page.next('connect-close')).data), { reconnect: true });
});

test('the example: a user receives what the admin sends; non-admins are refused; SIGTERM closes cleanly', async (t) => {
  const { origin, stop } = await startExample(t);
  const page = await fetch(`${origin}/`);
  t.is(page.status, 200);
  t.regex(await page.text(), /<html/i);

  const user7 = await RawStream.open(t, `${origin}/sse/hr/connect?access-token=7&reconnectOnClose=1`);
  const hunter7 = await RawStream.open(t, `${origin}/sse/hunter/connect?access-token=7@2`);
  const sent = await postJson(`${origin}/api/notify?access-token=admin`, { userId: 7, event: 'bell', data: { count: 3 } });
  t.deepEqual(sent, { status: 200, body: { count: 1 } });
  t.deepEqual(JSON.parse((await user7.next('bell')).data), { count: 3 });

  const toHunter = await postJson(`${origin}/api/notify?access-token=admin`, { system: 'hunter', tenantId: 2, event: 'notice', data: 'hi' });
  t.deepEqual(toHunter.body, { count: 1 });
  t.is((await hunter7.next('notice')).data, 'hi');
  t.is(user7.named('notice').length, 0);

  t.is((await postJson(`${origin}/api/notify?access-token=7`, { userId: 7, event: 'bell', data: 1 })).status, 403);
  t.is((await postJson(`${origin}/api/notify`, { userId: 7, event: 'bell', data: 1 })).status, 401);
  t.is((await postJson(`${origin}/api/notify?access-token=admin`, '{bad')).status, 400);
  // Client mistakes are 4xx with a message, never a 500 (hardening review, item 9).
  const mistakes: [string, unknown][] = [
    [`${origin}/api/notify?access-token=admin&access-token=admin`, { userId: 7, event: 'bell' }],
    [`${origin}/api/notify?access-token=admin`, { userId: 7, event: 'bell\r\nevent: forged' }],
    [`${origin}/api/notify?access-token=admin`, { userId: null, event: 'bell' }],
    [`${origin}/api/notify?access-token=admin`, { userId: { id: 7 }, event: 'bell' }],
    [`${origin}/api/notify?access-token=admin`, { tenantId: [1], event: 'bell' }],
    [`${origin}/api/notify?access-token=admin`, [1, 2]],
    [`${origin}/api/notify?access-token=admin`, 'null'],
  ];
  for (const [url, body] of mistakes) {
    const reply = await postJson(url, body);
    t.is(reply.status, 400, `${url} ${JSON.stringify(body)}: ${JSON.stringify(reply.body)}`);
    t.is(typeof reply.body.error, 'string');
  }
  const twice = await fetch(`${origin}/sse/hr/connect?access-token=7&access-token=8`);
  t.is(twice.status, 400, 'a repeated login parameter on the stream is a 400 too');
  await twice.body?.cancel();

  // The login cookie works like the query parameter.
  const byCookie = await RawStream.open(t, `${origin}/sse/hr/connect`, { headers: { cookie: 'access-token=8@1' } });
  t.is(byCookie.status, 200);
  t.deepEqual((await postJson(`${origin}/api/notify?access-token=admin`, { tenantId: 1, event: 'x', data: 1 })).body, { count: 1 });

  const metrics = await (await fetch(`${origin}/metrics`)).text();
  t.regex(metrics, /^sse_connections\{hub="hr",node="[^"]+"\} [1-9]/m);
  t.regex(metrics, /^sse_events_sent_total\{hub="hunter",node="[^"]+"\} 1$/m);

  // Durable: sent while user 9 is offline, delivered with its id when they connect.
  const durable = await postJson(`${origin}/api/notify?access-token=admin`, { userId: 9, event: 'offer', data: { id: 1 }, qos: true });
  t.is(durable.status, 200);
  t.is(durable.body.delivered, 0);
  const user9 = await RawStream.open(t, `${origin}/sse/hr/connect?access-token=9`);
  t.is((await user9.next('offer')).id, durable.body.messageId);

  const code = await stop();
  await user7.waitEnd();
  t.is(JSON.parse((await user7.next('connect-close')).data).reason, 'shutdown');
  t.is(code, 0);
});

test('the example as a cluster: an admin send on node 1 reaches a user on node 2', async (t) => {
  // No SSE_NODE_PORT: both systems of each node listen on a random port, which it prints;
  // then each node is given the others' addresses.
  const env = { SSE_CLUSTER_SECRET: SECRET, SSE_DISCOVERY: 'static', SSE_NODE_HOST: '127.0.0.1' };
  const nodes = [await startExample(t, env), await startExample(t, env)];
  for (const system of ['hr', 'hunter']) {
    const endpoint = new RegExp(`\\(${system}\\) internal endpoint (\\S+:\\d+)$`);
    const peers = await Promise.all(nodes.map(async (n) => (await n.line(endpoint))[1]!));
    for (const n of nodes) {
      t.deepEqual(await postJson(`${n.origin}/api/cluster/peers?access-token=admin`, { system, peers }), { status: 200, body: { peers } });
    }
  }
  const [node1, node2] = nodes as [RunningExample, RunningExample];
  t.is((await postJson(`${node1.origin}/api/cluster/peers?access-token=admin`, { peers: ['nonsense'] })).status, 400);
  t.is((await postJson(`${node1.origin}/api/cluster/peers?access-token=7`, { peers: [] })).status, 403);
  const user7 = await RawStream.open(t, `${node2.origin}/sse/hr/connect?access-token=7`);
  t.true(JSON.parse(user7.events[0]!.data).enableCluster);
  let body: unknown;
  await eventually(async () => {
    body = (await postJson(`${node1.origin}/api/notify?access-token=admin`, { userId: 7, event: 'bell', data: 'via node 1' })).body;
    return (body as { count: number }).count === 1;
  }, 'node 1 reaches node 2');
  t.is((await user7.next('bell')).data, 'via node 1');
  const hunter = await RawStream.open(t, `${node2.origin}/sse/hunter/connect?access-token=8`);
  await eventually(
    async () =>
      (await postJson(`${node1.origin}/api/notify?access-token=admin`, { system: 'hunter', userId: 8, event: 'x', data: 1 })).body.count === 1,
    'hunter cluster',
  );
  await hunter.next('x');
});

const { unavailable: noRedis } = redisTest('example.test.ts');
(noRedis === undefined ? test : test.skip)(
  'the example over Redis (SSE_REDIS_URL): sends and durable messages cross two nodes, no secret, no peer list',
  async (t) => {
    const redis = await RedisServer.start(t);
    const env = { SSE_REDIS_URL: redis.url };
    const [node1, node2] = [await startExample(t, env), await startExample(t, env)] as [RunningExample, RunningExample];
    await node1.line(/\(hr\) joined through Redis$/);
    await node2.line(/\(hr\) joined through Redis$/);
    const user7 = await RawStream.open(t, `${node2.origin}/sse/hr/connect?access-token=7`);
    t.true(JSON.parse(user7.events[0]!.data).enableCluster);
    await eventually(
      async () => (await postJson(`${node1.origin}/api/notify?access-token=admin`, { userId: 7, event: 'bell', data: 'via Redis' })).body.count === 1,
      'node 1 reaches a user on node 2',
    );
    t.is((await user7.next('bell')).data, 'via Redis');

    // A durable message accepted by node 1 while user 9 is offline waits in Redis; node 2 hands it over.
    const durable = await postJson(`${node1.origin}/api/notify?access-token=admin`, { userId: 9, event: 'offer', data: { id: 1 }, qos: true });
    t.is(durable.status, 200);
    t.is(durable.body.delivered, 0);
    const user9 = await RawStream.open(t, `${node2.origin}/sse/hr/connect?access-token=9`);
    t.is((await user9.next('offer')).id, durable.body.messageId);

    // The hunter system is a cluster of its own on the same Redis.
    const hunter = await RawStream.open(t, `${node2.origin}/sse/hunter/connect?access-token=7`);
    await eventually(
      async () =>
        (await postJson(`${node1.origin}/api/notify?access-token=admin`, { system: 'hunter', userId: 7, event: 'x', data: 1 })).body.count === 1,
      'hunter over Redis',
    );
    await hunter.next('x');
    t.is(user7.named('x').length, 0, 'hr does not get hunter events');
    t.is(await node1.stop(), 0);
    t.is(await node2.stop(), 0);
  },
);
