// Durable delivery benchmark: committed sends per second, and the time to drain a backlog
// of pending messages to a reconnecting user. Loopback only; bounded; stops by itself.
//   npx tsx scripts/bench/qos.ts [--sends 100000] [--backlog 10000]
import Koa from 'koa';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { createHub, ssePlugin } from '../../lib/index.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SENDS = arg('sends', 100_000);
const BACKLOG = arg('backlog', 10_000);
const CONCURRENCY = 1000;
const payload = { type: 'offer-accepted', candidateId: 123456, jobId: 987, at: '2026-11-25T10:00:00Z', note: 'x'.repeat(24) };

async function sendRate(synchronous: 'NORMAL' | 'FULL'): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sse-bench-'));
  const hub = createHub({ qos: { file: join(dir, 'q.db'), synchronous, maxMessages: SENDS * 2 } });
  const started = process.hrtime.bigint();
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
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
  return SENDS / seconds;
}

async function drainTime(): Promise<{ ms: number; received: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sse-bench-'));
  const plugin = ssePlugin('/sse', {
    authenticate: (ctx) => ({ id: String(ctx.query.user) }),
    qos: { file: join(dir, 'q.db'), maxPendingPerTarget: BACKLOG + 1 },
  });
  for (let i = 0; i < BACKLOG; i++) void plugin.hub.qos.sendByUserId('drain', 'bell', { i, ...payload });
  await plugin.hub.qos.sendByUserId('drain', 'bell', { i: BACKLOG, last: true });
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

const normal = await sendRate('NORMAL');
const full = await sendRate('FULL');
const drain = await drainTime();
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
