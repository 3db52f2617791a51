// Workers on one port (startWorkers): real processes, a primary and two workers of
// node:cluster on a loopback port, SQLite files per worker slot.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable: noRedis } = redisTest('workers.test.ts');

interface Line {
  listening?: number;
  slot?: number;
  nodeId?: string;
  pid?: number;
  ready?: { slot: number; pid: number };
  exit?: { slot: number; pid: number; code: number | null; signal: string | null; restarting: boolean };
  allReady?: Record<string, number>;
  notReady?: { code: string; missing: string[] };
  askedReady?: { ok?: true; code?: string; missing?: string[] };
  restarted?: Record<string, number>;
}

/** The fixture's primary, its workers, and what they said. */
class WorkersApp {
  readonly lines: Line[] = [];
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  #waiters: (() => void)[] = [];

  constructor(t: ExecutionContext, env: Record<string, string> = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'sse-workers-'));
    this.proc = spawn(process.execPath, ['--import=tsx', 'test/fixtures/workers-app.ts'], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, QOS_DIR: dir, WORKERS: '2', ...env },
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      this.lines.push(JSON.parse(line) as Line);
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    });
    t.teardown(async () => {
      // Every process it started: the primary and each worker ever seen.
      for (const l of this.lines) if (l.listening !== undefined) killQuietly(l.pid!);
      this.proc.kill('SIGKILL');
      await this.exited;
      rmSync(dir, { recursive: true, force: true });
    });
  }

  async until<T>(find: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${what}; lines: ${JSON.stringify(this.lines)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until both workers serve; their node ids by slot, and the port. */
  async started(): Promise<{ base: string; w1: string; w2: string }> {
    await this.until(() => this.lines.find((l) => l.allReady), 'both workers ready', 60_000);
    const node = (slot: number): string => [...this.lines].reverse().find((l) => l.listening !== undefined && l.slot === slot)!.nodeId!;
    const port = this.lines.find((l) => l.listening !== undefined)!.listening!;
    return { base: `http://127.0.0.1:${port}`, w1: node(1), w2: node(2) };
  }

  command(cmd: string): void {
    this.proc.stdin!.write(JSON.stringify({ cmd }) + '\n');
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** One request on a connection of its own (so the primary hands it to the next worker). */
function request(method: string, url: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(url, { method, agent: false, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const withExpect = (url: string, nodeId: string): string => `${url}${url.includes('?') ? '&' : '?'}expect=${nodeId}`;

/** A request served by the worker `nodeId`: sent again while another one refuses it (421, nothing done). */
async function on(nodeId: string, method: string, url: string, body?: unknown): Promise<Record<string, unknown>> {
  for (let i = 0; i < 40; i++) {
    const res = await request(method, withExpect(url, nodeId), body);
    if (res.status !== 421) {
      if (res.status !== 200) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.json)}`);
      return res.json;
    }
  }
  throw new Error(`${url} never reached ${nodeId}`);
}

/** A stream held by the worker `nodeId`. */
async function streamOn(t: ExecutionContext, nodeId: string, url: string): Promise<RawStream> {
  for (let i = 0; i < 40; i++) {
    const stream = await RawStream.open(t, withExpect(url, nodeId));
    if (stream.status === 200) return stream;
    if (stream.status !== 421) throw new Error(`${url}: ${stream.status} ${stream.body}`);
  }
  throw new Error(`${url} never reached ${nodeId}`);
}

const dataOf = (json: Record<string, unknown>): Record<string, unknown> => json.data as Record<string, unknown>;

test('a stream on worker 1, sends that land on worker 2: exact counts, across both ways', async (t) => {
  const app = new WorkersApp(t);
  const { base, w1, w2 } = await app.started();
  t.not(w1, w2);
  const a = await streamOn(t, w1, `${base}/sse/test/connect?access-token=u1`);
  t.is(a.headers?.get('x-sse-server-id'), w1);
  // pool.ready() resolved once worker 2 verified worker 1 as a peer: the count is exact at once.
  t.like(await on(w2, 'POST', `${base}/test/send?user=u1&event=ping`), { nodeId: w2, count: 1 });
  t.is(JSON.parse((await a.next('ping', 5000)).data).from, w2);
  // A second page of the same user on worker 2: both count, whichever worker sends.
  const b = await streamOn(t, w2, `${base}/sse/test/connect?access-token=u1`);
  t.like(await on(w1, 'POST', `${base}/test/send?user=u1&event=pong`), { nodeId: w1, count: 2 });
  t.like(await on(w2, 'POST', `${base}/test/send?user=u1&event=pong`), { nodeId: w2, count: 2 });
  await a.until(() => a.named('pong').length === 2, 'two pongs on worker 1', 5000);
  await b.until(() => b.named('pong').length === 2, 'two pongs on worker 2', 5000);
  t.like(await on(w1, 'POST', `${base}/test/send?user=nobody&event=pong`), { count: 0 });
});

test('message, ack and join for a connection held by another worker', async (t) => {
  const app = new WorkersApp(t);
  const { base, w1, w2 } = await app.started();
  const page = await streamOn(t, w1, `${base}/sse/test/connect?access-token=u3&ack=1`);
  const connectionId = page.connectionId;

  // message: the app's onMessage runs where the request landed; its reply reaches the holder.
  const message = await on(w2, 'POST', `${base}/sse/test/connect/message/hello.do?access-token=u3&connectionId=${connectionId}`, { text: 'hi' });
  t.deepEqual(dataOf(message), { handledBy: w2 });
  t.like(JSON.parse((await page.next('echo', 5000)).data), { path: 'hello', handledBy: w2 });

  // join on worker 2 for the stream on worker 1: a channel send from either worker reaches it.
  const joined = await on(w2, 'POST', `${base}/sse/test/connect/join.do?access-token=u3`, { connectionId, channels: ['room:1'] });
  t.deepEqual(dataOf(joined), { channels: ['room:1'] });
  t.like(await on(w2, 'POST', `${base}/test/send?channel=room:1&event=chat`), { count: 1 });
  t.like(await on(w1, 'POST', `${base}/test/send?channel=room:1&event=chat`), { count: 1 });
  await page.until(() => page.named('chat').length === 2, 'two chats', 5000);

  // ack on worker 2 of a durable message worker 1 stored: gone from worker 1's store.
  const sent = await on(w1, 'POST', `${base}/test/send?user=u3&event=offer&durable=1`);
  t.is((await page.next('offer', 5000)).id, sent.messageId as string);
  t.not((await on(w1, 'GET', `${base}/test/status?id=${String(sent.messageId)}`)).status, null);
  const acked = await on(w2, 'POST', `${base}/sse/test/connect/ack.do?access-token=u3`, { connectionId, ids: [sent.messageId] });
  t.deepEqual(dataOf(acked), { acked: 1 });
  t.is((await on(w1, 'GET', `${base}/test/status?id=${String(sent.messageId)}`)).status, null);
});

test('a worker killed with SIGKILL: restarted in its slot, its pages back on the other, its durable messages delivered', async (t) => {
  const app = new WorkersApp(t);
  const { base, w1, w2 } = await app.started();
  const page = await streamOn(t, w1, `${base}/sse/test/connect?access-token=u4`);
  // u5 is offline: worker 1 keeps the message in its own file.
  const sent = await on(w1, 'POST', `${base}/test/send?user=u5&event=offer&durable=1`);
  const oldPid = [...app.lines].reverse().find((l) => l.listening !== undefined && l.slot === 1)!.pid!;
  process.kill(oldPid, 'SIGKILL');
  await page.waitEnd(10_000);
  const exit = await app.until(() => app.lines.find((l) => l.exit?.pid === oldPid)?.exit, 'the exit of worker 1');
  t.like(exit, { slot: 1, signal: 'SIGKILL', restarting: true });

  // The page reconnects to the worker left; worker 2 serves it while slot 1 is empty or back.
  const again = await streamOn(t, w2, `${base}/sse/test/connect?access-token=u4`);
  t.like(await on(w2, 'POST', `${base}/test/send?user=u4&event=ping`), { count: 1 });
  await again.next('ping', 5000);

  // The replacement: same slot, same node id, a new process, the same SQLite file.
  const ready = await app.until(() => app.lines.find((l) => l.ready?.slot === 1 && l.ready.pid !== oldPid)?.ready, 'a new worker 1');
  t.not(ready.pid, oldPid);
  t.is([...app.lines].reverse().find((l) => l.listening !== undefined && l.slot === 1)!.nodeId, w1);
  // u5 comes online on worker 2: the message worker 1 stored before it died arrives.
  const late = await streamOn(t, w2, `${base}/sse/test/connect?access-token=u5&ack=1`);
  t.is((await late.next('offer', 20_000)).id, sent.messageId as string);
  // worker-ready of the new worker 1 came once it verified worker 2: it counts the page there.
  t.like(await on(w1, 'POST', `${base}/test/send?user=u4&event=pong`), { nodeId: w1, count: 1 });
});

/**
 * Start and two restarts; streams opened as each worker listens, sends both ways the moment
 * ready() / restart() resolved: each counts the stream on the other worker.
 */
async function countsAtOnce(t: ExecutionContext, app: WorkersApp): Promise<void> {
  const seen = new Set<number>();
  /** The next worker of `slot` to listen (a process not seen before): its node id, and the port. */
  const listening = async (slot: number): Promise<{ nodeId: string; port: number }> => {
    const line = await app.until(
      () => app.lines.find((l) => l.listening !== undefined && l.slot === slot && !seen.has(l.pid!)),
      `worker ${slot} listening`,
      60_000,
    );
    seen.add(line.pid!);
    return { nodeId: line.nodeId!, port: line.listening! };
  };
  for (let round = 0; round < 3; round++) {
    if (round > 0) app.command('restart');
    const w1 = await listening(1);
    const base = `http://127.0.0.1:${w1.port}`;
    const a = await streamOn(t, w1.nodeId, `${base}/sse/test/connect?access-token=r${round}a`);
    const w2 = await listening(2);
    const b = await streamOn(t, w2.nodeId, `${base}/sse/test/connect?access-token=r${round}b`);
    if (round === 0) await app.until(() => app.lines.find((l) => l.allReady), 'ready()', 60_000);
    else await app.until(() => app.lines.filter((l) => l.restarted).length === round || undefined, `restart ${round}`, 60_000);
    t.like(await on(w2.nodeId, 'POST', `${base}/test/send?user=r${round}a&event=ping`), { count: 1 }, `round ${round}: worker 2 to worker 1`);
    t.like(await on(w1.nodeId, 'POST', `${base}/test/send?user=r${round}b&event=ping`), { count: 1 }, `round ${round}: worker 1 to worker 2`);
    await a.next('ping', 5000);
    await b.next('ping', 5000);
  }
}

test('ready() and restart() resolve once the workers count each other: exact counts across workers at once, start and restarts', async (t) => {
  // `start` does not wait for its hub's cluster node (the documented app), whose start is slow
  // here: a worker serves before its node is known to the others.
  await countsAtOnce(t, new WorkersApp(t, { HUB_WAIT: '0', DISCOVERY_DELAY_MS: '500' }));
});

(noRedis === undefined ? test : test.skip)(
  'on Redis too: ready() and restart() resolve once each worker counts the others as live peers',
  async (t) => {
    // Nodes of the Redis engine see a new node at their next beat: 2 s here, so that a ready()
    // meaning only "serves" (the workers' `start` not waiting for their hubs) comes well before.
    const redis = await RedisServer.start(t, { aof: false });
    await countsAtOnce(t, new WorkersApp(t, { HUB_WAIT: '0', REDIS_URL: redis.url, HEALTH_INTERVAL_MS: '2000' }));
  },
);

test('a graceful restart of all workers loses no durable message; SIGTERM to the primary closes every worker', async (t) => {
  const app = new WorkersApp(t);
  const { base, w1, w2 } = await app.started();
  const before = app.lines.find((l) => l.allReady)!.allReady!;
  const p1 = await streamOn(t, w1, `${base}/sse/test/connect?access-token=u6&reconnectOnClose=1`);
  const p2 = await streamOn(t, w2, `${base}/sse/test/connect?access-token=u7&reconnectOnClose=1`);
  const m1 = await on(w1, 'POST', `${base}/test/send?user=u8&event=offer&durable=1`);
  const m2 = await on(w2, 'POST', `${base}/test/send?user=u8&event=offer&durable=1`);

  app.command('restart');
  // Each page is told to reconnect as its worker closes.
  t.like(JSON.parse((await p1.next('connect-close', 30_000)).data), { reconnect: true });
  t.like(JSON.parse((await p2.next('connect-close', 30_000)).data), { reconnect: true });
  const after = await app.until(() => app.lines.find((l) => l.restarted)?.restarted, 'the restart', 60_000);
  t.not(after['1'], before['1']);
  t.not(after['2'], before['2']);
  const exits = app.lines.filter((l) => l.exit).map((l) => l.exit!);
  t.deepEqual(
    exits.map((e) => [e.slot, e.code, e.restarting]),
    [
      [1, 0, false],
      [2, 0, false],
    ],
  );

  // The offline user's messages, stored by each old worker, come from their replacements.
  const late = await RawStream.open(t, `${base}/sse/test/connect?access-token=u8&ack=1`);
  await late.until(() => late.named('offer').length === 2, 'both offers', 20_000);
  t.deepEqual(
    late
      .named('offer')
      .map((e) => e.id)
      .sort(),
    [m1.messageId, m2.messageId].sort(),
  );

  const pages = [
    await streamOn(t, w1, `${base}/sse/test/connect?access-token=u9&reconnectOnClose=1`),
    await streamOn(t, w2, `${base}/sse/test/connect?access-token=u9&reconnectOnClose=1`),
  ];
  app.proc.kill('SIGTERM');
  for (const page of pages) t.like(JSON.parse((await page.next('connect-close', 30_000)).data), { reconnect: true });
  t.is(await app.exited, 0);
  const final = app.lines.filter((l) => l.exit).slice(2);
  t.deepEqual(
    final.map((l) => [l.exit!.code, l.exit!.restarting]),
    [
      [0, false],
      [0, false],
    ],
  );
});

test('a cluster whose workers never verify each other: ready() rejects after readyTimeoutMs, saying which node lacks which peer', async (t) => {
  // Each worker a secret of its own: every hello fails its signature, no worker counts another.
  const app = new WorkersApp(t, { OWN_SECRET: '1', READY_TIMEOUT_MS: '5000' });
  // Both serve (their nodes told to the primary before): a ready() asked now misses only the peers.
  const listening = (slot: number): Promise<Line> =>
    app.until(() => app.lines.find((l) => l.listening !== undefined && l.slot === slot), `worker ${slot} listening`, 60_000);
  const [l1, l2] = [await listening(1), await listening(2)];
  const [w1, w2] = [l1.nodeId!, l2.nodeId!];
  app.command('ready');
  const answer = await app.until(() => app.lines.find((l) => l.askedReady)?.askedReady, 'the answer of ready()', 60_000);
  t.is(answer.code, 'ERR_SSE_WORKERS_NOT_READY');
  t.deepEqual([...answer.missing!].sort(), [
    `node ${w1} (worker 1) has not verified ${w2} (group test)`,
    `node ${w2} (worker 2) has not verified ${w1} (group test)`,
  ]);
  t.false(app.lines.some((l) => l.allReady));
  // The workers go on serving their own streams.
  t.like(await on(w1, 'POST', `http://127.0.0.1:${l1.listening!}/test/send?user=nobody&event=x`), { count: 0 });
});
