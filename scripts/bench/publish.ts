// Throughput and latency of the publish API against `ctx.sse` inside the process: the same
// server (scripts/bench/publish-server.ts) and the same receiving stream; messages published
// by (a) the hub inside the server process (baseline), (b) `POST /publish`, one message per
// request, (c) `POST /publish/batch` of `--batch` messages; `--concurrency` calls in flight
// each. Publishes/s counts from the first publish to the last receipt; latency is publish
// (the client stamps the message just before sending) to receipt at the stream, on the
// machine's monotonic clock. Rounds rotate the order of the modes, so that the machine's
// drift hits them alike. Loopback only; bounded in count and time.
//
//   npx tsx scripts/bench/publish.ts [--n 10000] [--rounds 4] [--concurrency 16] [--batch 100]
import { createParser } from 'eventsource-parser';
import { opt } from './cli.js';
import { spawn, stop, stopAfter } from './procs.js';
import { Histogram, median, nowUs } from './stats.js';

const N = Number(opt('n', '10000'));
const ROUNDS = Number(opt('rounds', '4'));
const CONCURRENCY = Number(opt('concurrency', '16'));
const BATCH = Number(opt('batch', '100'));
if (!(N > 0 && N <= 200_000) || !(ROUNDS > 0 && ROUNDS <= 20) || !(BATCH > 0 && BATCH <= 1000)) throw new Error('bad arguments');
const LIMIT_MS = 15 * 60_000;
stopAfter(LIMIT_MS, 'publish bench: still running after 15 min, stopping');

const MODES = ['inproc', 'single', 'batch'] as const;
type Mode = (typeof MODES)[number];
const LABEL: Record<Mode, string> = {
  inproc: 'ctx.sse in the process',
  single: 'POST /publish (1 per request)',
  batch: `POST /publish/batch (${BATCH} per request)`,
};

const BENCH_KEY = 'bench-publish-key-0123456789abcdef';
const { rpc, ready } = await spawn('publish-server.ts', [BENCH_KEY], [], 'publish-server');
const base = `http://127.0.0.1:${(ready as { port: number }).port}/sse`;

/** The receiving stream: resolves `received(n)` when n events arrived since the last reset, recording latencies. */
const stream = await (async () => {
  const res = await fetch(`${base}/connect?access-token=bench`);
  if (!res.ok || res.body === null) throw new Error(`stream: ${res.status}`);
  let histogram = new Histogram();
  let count = 0;
  let last = 0;
  let want = Infinity;
  let wake: (() => void) | undefined;
  const parser = createParser({
    onEvent: (msg) => {
      if (msg.event !== 'tick') return;
      const at = nowUs();
      histogram.record(at - (JSON.parse(msg.data) as { t: number }).t);
      count++;
      last = at;
      if (count >= want) wake?.();
    },
  });
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of res.body! as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
  })().catch(() => undefined); // the server is stopped at the end
  return {
    reset(): void {
      histogram = new Histogram();
      count = 0;
      want = Infinity;
    },
    received(n: number): Promise<{ histogram: Histogram; lastUs: number }> {
      want = n;
      return new Promise((resolve) => {
        const done = (): void => resolve({ histogram, lastUs: last });
        if (count >= n) done();
        else wake = done;
      });
    },
  };
})();

const headers = { authorization: `Bearer ${BENCH_KEY}`, 'content-type': 'application/json' };
const message = (seq: number): unknown => ({ target: 'user', keys: ['bench'], event: 'tick', data: { t: nowUs(), seq } });

async function publishAll(mode: Mode): Promise<void> {
  if (mode === 'inproc') {
    await rpc.call('inproc', { n: N, concurrency: CONCURRENCY }, 300_000);
    return;
  }
  let seq = 0;
  const worker = async (): Promise<void> => {
    while (seq < N) {
      let body: unknown;
      if (mode === 'single') body = message(seq++);
      else {
        const messages = [];
        for (let i = 0; i < BATCH && seq < N; i++) messages.push(message(seq++));
        body = { messages };
      }
      const url = `${base}/publish${mode === 'batch' ? '/batch' : ''}`;
      const init = { method: 'POST', headers, body: JSON.stringify(body) };
      // A kept-alive socket the server closed as it was reused (undici's race): once more. The
      // message was not received (no answer), and a duplicate would only be counted early.
      const res = await fetch(url, init).catch(() => fetch(url, init));
      if (res.status !== 200) throw new Error(`${mode}: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

interface Result {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}
const results: Record<Mode, Result[]> = { inproc: [], single: [], batch: [] };

// Warm-up: each mode once, small.
for (const mode of MODES) {
  stream.reset();
  const done = stream.received(Math.min(N, 1000));
  await publishAll(mode);
  await done;
}
for (let round = 0; round < ROUNDS; round++) {
  const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]!);
  for (const mode of order) {
    stream.reset();
    const done = stream.received(N);
    const started = nowUs();
    await publishAll(mode);
    const { histogram, lastUs } = await done;
    const r = { perSecond: N / ((lastUs - started) / 1e6), p50Ms: histogram.percentile(50) / 1000, p99Ms: histogram.percentile(99) / 1000 };
    results[mode].push(r);
    console.log(`round ${round + 1} ${mode}: ${Math.round(r.perSecond)}/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`);
  }
}
await stop(rpc);

const med = (mode: Mode, key: keyof Result): number => median(results[mode].map((r) => r[key]));
const base0 = med('inproc', 'perSecond');
console.log(`\n${N} messages per mode and round, ${ROUNDS} rounds (medians), ${CONCURRENCY} calls in flight, one receiving stream\n`);
console.log('| publisher | publishes/s | vs ctx.sse | p50 publish→receipt | p99 publish→receipt |');
console.log('|---|---|---|---|---|');
for (const mode of MODES) {
  console.log(
    `| ${LABEL[mode]} | ${Math.round(med(mode, 'perSecond')).toLocaleString('en')} | ${(med(mode, 'perSecond') / base0).toFixed(2)}× | ${med(mode, 'p50Ms').toFixed(2)} ms | ${med(mode, 'p99Ms').toFixed(2)} ms |`,
  );
}
process.exit(0);
