// `tsx scripts/bench/lan-link.ts [--sends N]` (root): cross-node send latency over a slow,
// lossy link, beside the same sends over a clean link in the same run (the baseline).
//
// Three hosts of a private LAN (test/helpers/lan.ts), each a lab node on the library's
// defaults (test/fixtures/lan-node.ts): A sends, B is on a clean link, C behind a link that
// delays every frame 50 ms and loses 2 % of them, each way (tap-relay.py; this kernel has no
// netem). A sends N events to a user on B and N to a user on C, three sends in flight, each
// send waiting for its answer; a send's latency runs from the call on A to the event on the
// receiving stream. Runs twice: with the default `cluster.timeoutMs` (1 s) and with 3 s.
import { Lan } from '../../test/helpers/lan.js';
import { allPeers, eventsOf, openStream, startNode, type LabNode } from '../../test/lan/lab.js';

const args = process.argv.slice(2);
const SENDS = Number(args[args.indexOf('--sends') + 1] || 1000);
const SLOW = { delayMs: 50, lossPercent: 2 };

interface Result {
  latencies: number[];
  failed: number;
  lost: number;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function run(timeoutMs: number | undefined): Promise<{ clean: Result; slow: Result }> {
  const lan = await Lan.create(3, { 2: SLOW });
  const cleanup: (() => void)[] = [];
  const teardown = { teardown: (fn: () => void) => void cleanup.push(fn) };
  try {
    const options = timeoutMs === undefined ? {} : { HUB_OPTIONS: JSON.stringify({ cluster: { timeoutMs } }) };
    const [a, b, c] = await Promise.all(lan.hosts.map((h) => startNode(teardown, h, options)));
    await allPeers([a!, b!, c!], 60_000);
    const measure = async (node: LabNode, user: string): Promise<Result> => {
      const stream = await openStream(node, user);
      const sentAt = new Map<number, number>();
      let failed = 0;
      let next = 0;
      await Promise.all(
        [0, 1, 2].map(async () => {
          while (next < SENDS) {
            const i = next++;
            sentAt.set(i, performance.timeOrigin + performance.now());
            const answer = await a!.proc.request({ cmd: 'send', users: [user], event: 'tick', data: i }, 30_000);
            if (answer.sent !== 1) failed++;
          }
        }),
      );
      // A send reported failed never arrives (its deadline passed); the others are written
      // when their answer comes, and reach this process a moment later.
      const deadline = Date.now() + 10_000;
      while (eventsOf(node, stream, 'tick').length < SENDS - failed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const got = eventsOf(node, stream, 'tick');
      const latencies = got.map((e) => Number(e.at) - sentAt.get(Number(e.data))!).sort((x, y) => x - y);
      return { latencies, failed, lost: SENDS - got.length };
    };
    return { clean: await measure(b!, 'on-b'), slow: await measure(c!, 'on-c') };
  } finally {
    for (const fn of cleanup.reverse()) fn();
    lan.destroy();
  }
}

function row(label: string, r: Result): string {
  const l = r.latencies;
  return `| ${label} | ${l.length} / ${SENDS} | ${r.failed} (${r.lost} lost) | ${pct(l, 50).toFixed(1)} | ${pct(l, 90).toFixed(1)} | ${pct(l, 99).toFixed(1)} | ${pct(l, 100).toFixed(1)} |`;
}

console.log(`# cross-node sends, ${SENDS} per link, 3 in flight; slow link: ${SLOW.delayMs} ms and ${SLOW.lossPercent} % loss each way`);
console.log('| link, cluster.timeoutMs | arrived | sends reported failed (never arrived) | p50 ms | p90 ms | p99 ms | max ms |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const timeoutMs of [undefined, 3000]) {
  const { clean, slow } = await run(timeoutMs);
  const t = timeoutMs === undefined ? '1,000 (default)' : timeoutMs.toLocaleString('en');
  console.log(row(`clean, ${t}`, clean));
  console.log(row(`slow + lossy, ${t}`, slow));
  console.log(`| ratio p99 slow / clean, ${t} | | | | | ${(pct(slow.latencies, 99) / pct(clean.latencies, 99)).toFixed(1)}× | |`);
}
