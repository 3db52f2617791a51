// Durable delivery benchmark: committed sends per second, and the time to drain a backlog
// of pending messages to a reconnecting user. Loopback only; bounded; stops by itself.
//   npx tsx scripts/bench/qos.ts [--sends 100000] [--backlog 10000] [--redis]
// --redis also measures the Redis store, on a redis-server it starts itself (loopback, a
// free port, a temp dir, appendonly yes + appendfsync everysec) and stops at the end.
import Koa from 'koa';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { createHub, ssePlugin, type QosOptions } from '../../lib/index.js';
import { flag, opt } from './cli.js';

const SENDS = Number(opt('sends', '100000'));
const BACKLOG = Number(opt('backlog', '10000'));
const CONCURRENCY = 1000;
const payload = { type: 'offer-accepted', candidateId: 123456, jobId: 987, at: '2026-11-25T10:00:00Z', note: 'x'.repeat(24) };

/** Where a run keeps its messages: a fresh SQLite file, or a fresh prefix on the bench's redis-server. */
type Store = { synchronous: 'NORMAL' | 'FULL' } | { redis: string };
let runs = 0;
const storeOf = (store: Store, dir: string): QosOptions =>
  'redis' in store ? { redis: store.redis, redisPrefix: `bench-${runs++}` } : { file: join(dir, 'q.db'), synchronous: store.synchronous };

/** CPU seconds used so far by a process (utime + stime from /proc; Linux ticks of 10 ms). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU per send of the last {@link sendRate} run, in µs: this process and the redis-server. */
const cpuPerSend = { node: 0, redis: 0 };

async function sendRate(store: Store, redisPid?: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sse-bench-'));
  const hub = createHub({ qos: { ...storeOf(store, dir), maxMessages: SENDS * 2 } });
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const redisBefore = redisPid === undefined ? 0 : cpuSecondsOf(redisPid);
  let next = 0;
  // CONCURRENCY senders in flight at once, as many request handlers would be.
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < SENDS) {
        const n = next++;
        await hub.qos.sendByUserId(`u${n % 1000}`, 'bell', payload);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  cpuPerSend.node = (cpu.user + cpu.system) / SENDS;
  cpuPerSend.redis = redisPid === undefined ? 0 : ((cpuSecondsOf(redisPid) - redisBefore) * 1e6) / SENDS;
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
  return SENDS / seconds;
}

async function drainTime(store: Store): Promise<{ ms: number; received: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sse-bench-'));
  const plugin = ssePlugin('/sse', {
    authenticate: (ctx) => ({ id: String(ctx.query.user) }),
    qos: { ...storeOf(store, dir), maxPendingPerTarget: BACKLOG + 1 },
  });
  const backlog: Promise<unknown>[] = [];
  for (let i = 0; i < BACKLOG; i++) backlog.push(plugin.hub.qos.sendByUserId('drain', 'bell', { i, ...payload }));
  backlog.push(plugin.hub.qos.sendByUserId('drain', 'bell', { i: BACKLOG, last: true }));
  await Promise.all(backlog);
  const app = new Koa();
  app.use(plugin);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/sse/connect?user=drain`);
  let received = 0;
  let ms = 0;
  await new Promise<void>((resolve, reject) => {
    const parser = createParser({
      onEvent: (e) => {
        if (e.event !== 'bell') return;
        received++;
        if (received === BACKLOG + 1) {
          ms = performance.now() - started;
          resolve();
        }
      },
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader(); // a fetch body is bytes (typed any here)
    const decoder = new TextDecoder();
    const timer = setTimeout(() => reject(new Error('drain timed out')), 30_000);
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || ms) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
      clearTimeout(timer);
    })();
  });
  await plugin.close();
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
  return { ms, received };
}

/** A redis-server of its own, as the docs recommend running it for durable messages. */
async function startRedis(): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const dir = mkdtempSync(join(tmpdir(), 'sse-bench-redis-'));
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'];
  const child: ChildProcess = spawn('redis-server', [...args, '--protected-mode', 'yes', '--loglevel', 'warning'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const probe = createHub({ qos: { redis: url, redisPrefix: 'probe' } });
  for (let i = 0; ; i++) {
    try {
      await probe.qos.status('0'.repeat(26));
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await probe.close({ drainMs: 0 });
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const normal = await sendRate({ synchronous: 'NORMAL' });
const full = await sendRate({ synchronous: 'FULL' });
const drain = await drainTime({ synchronous: 'NORMAL' });
let redis: { sends: number; cpu: typeof cpuPerSend; drain: { ms: number; received: number } } | undefined;
if (flag('redis')) {
  const server = await startRedis();
  try {
    const sends = await sendRate({ redis: server.url }, server.pid);
    redis = { sends, cpu: { ...cpuPerSend }, drain: await drainTime({ redis: server.url }) };
  } finally {
    await server.stop();
  }
}
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
console.log(`# qos benchmark, ${new Date().toISOString()}, ${machine}`);
console.log(`| measure | result | target |`);
console.log(`|---|---|---|`);
console.log(
  `| committed durable sends/s (synchronous=NORMAL, ${SENDS} sends, ${CONCURRENCY} in flight) | ${Math.round(normal).toLocaleString('en')} | >= 50,000 |`,
);
console.log(`| committed durable sends/s (synchronous=FULL) | ${Math.round(full).toLocaleString('en')} | — |`);
console.log(
  `| drain ${BACKLOG.toLocaleString('en')} pending messages to a reconnecting user | ${drain.ms.toFixed(0)} ms (${drain.received} events) | < 250 ms |`,
);
if (redis !== undefined) {
  console.log(
    `| committed durable sends/s (Redis store, appendonly yes + appendfsync everysec, ${CONCURRENCY} in flight) | ${Math.round(redis.sends).toLocaleString('en')} | >= 20,000 |`,
  );
  // On a busy machine the rate above measures the contention; CPU per send does not: each of
  // the two processes can do 1e6 / (its µs per send) sends per second on a core of its own.
  const bound = Math.round(1e6 / Math.max(redis.cpu.node, redis.cpu.redis)).toLocaleString('en');
  console.log(
    `| CPU per Redis send: this process / redis-server | ${redis.cpu.node.toFixed(1)} µs / ${redis.cpu.redis.toFixed(1)} µs (one core each: ~${bound} sends/s) | — |`,
  );
  console.log(
    `| drain ${BACKLOG.toLocaleString('en')} pending messages from Redis to a reconnecting user | ${redis.drain.ms.toFixed(0)} ms (${redis.drain.received} events) | — |`,
  );
}
