// Tables (Markdown), the ratio chart (a hand-made SVG) and the BENCHMARKS.md section.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { median } from './stats.js';

export type ServerKind = 'raw' | 'raw-socket' | 'koa' | 'lib' | 'better-sse' | 'socket.io';

export interface Phase {
  expected: number;
  delivered: number;
  perSec: number;
  cpuPerDeliveryUs: number;
  /** Server CPU time / wall time of the phase (1 = one core busy). */
  serverUtil: number;
  /** The busiest client process, same unit. */
  clientUtil: number;
  p50Ms: number;
  p99Ms: number;
}

export interface Run {
  server: ServerKind;
  n: number;
  connect: { perSec: number; failed: number; /** Server CPU time per accepted stream, µs. */ cpuUs?: number };
  mem?: { heapPerConn: number; rssPerConn: number; externalPerConn: number };
  burst: Phase[];
  /** The paced repetition with the median p99, and all of them. */
  paced?: Phase;
  pacedAll?: Phase[];
  pacedRate?: number;
  targeted?: Phase;
}

/** Paced runs of raw and koa-sse-server, both up at once, alternating. */
export interface Pair {
  n: number;
  rounds: number;
  raw: Phase[];
  lib: Phase[];
}

export interface Results {
  runs: Run[];
  pair?: Pair | undefined;
  /** When the measurement ended (ISO 8601). */
  measuredAt?: string | undefined;
}

export interface ReportConfig {
  quick: boolean;
  sizes: number[];
  memSizes: number[];
  clients: number;
  burstDeliveries: number;
  batch: number;
  repeat: number;
  pacedDeliveriesPerSec: number;
  pacedSeconds: number;
  targetedSends: number;
  targetedBatch: number;
  pairRounds: number;
}

const NAMES: Record<ServerKind, string> = {
  raw: 'raw node:http',
  'raw-socket': '(raw, socket.write)',
  koa: '(bare Koa)',
  lib: '**koa-sse-server**',
  'better-sse': 'better-sse',
  'socket.io': 'socket.io (ws)',
};
const PLAIN: Record<ServerKind, string> = {
  raw: 'raw node:http',
  'raw-socket': 'raw, socket.write (ref.)',
  koa: 'bare Koa (ref.)',
  lib: 'koa-sse-server',
  'better-sse': 'better-sse',
  'socket.io': 'socket.io (ws)',
};

const int = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en') : '—');
const fix = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : '—');
const kb = (bytes: number): string => fix(bytes / 1024, 2);
const ratio = (v: number, base: number | undefined): string =>
  base === undefined || !Number.isFinite(v) || !Number.isFinite(base) || base === 0 ? '—' : `${(v / base).toFixed(2)}×`;

/** The median burst phase by deliveries/s, and the spread over repetitions. */
function burstOf(run: Run): { mid: Phase; min: number; max: number } {
  const sorted = [...run.burst].sort((a, b) => a.perSec - b.perSec);
  const mid = sorted[(sorted.length - 1) >> 1]!;
  return { mid, min: sorted[0]!.perSec, max: sorted[sorted.length - 1]!.perSec };
}

function complete(p: Phase): string {
  return p.delivered >= p.expected ? '' : ` (incomplete: ${((p.delivered / p.expected) * 100).toFixed(1)}%)`;
}

function bottleneck(p: Phase): string {
  // Two cores: when the server is well below one core and a client process is near one,
  // the load client is what limits the rate, not the server.
  if (p.serverUtil < 0.8 && p.clientUtil > 0.85) return ' ⚑client';
  return '';
}

function byKey(runs: Run[]): Map<string, Run> {
  return new Map(runs.map((r) => [`${r.server}@${r.n}`, r]));
}

export interface Targets {
  n: number;
  libVsRaw: number;
  libVsRawSocket: number;
  libVsBetterSse: number;
  heapKb: number;
  heapN: number;
  pacedP99VsRaw: number;
}

export function targets({ runs, pair }: Results, config: ReportConfig): Targets {
  const at = byKey(runs);
  const n = Math.max(...config.sizes);
  const get = (s: ServerKind, size = n): Run | undefined => at.get(`${s}@${size}`);
  const dps = (s: ServerKind): number => {
    const r = get(s);
    return r ? median(r.burst.map((b) => b.perSec)) : NaN;
  };
  const heapN = Math.max(...config.memSizes);
  return {
    n,
    libVsRaw: dps('lib') / dps('raw'),
    libVsRawSocket: dps('lib') / dps('raw-socket'),
    libVsBetterSse: dps('lib') / dps('better-sse'),
    heapKb: (get('lib', heapN)?.mem?.heapPerConn ?? NaN) / 1024,
    heapN,
    pacedP99VsRaw: pair
      ? median(pair.lib.map((p) => p.p99Ms)) / median(pair.raw.map((p) => p.p99Ms))
      : (get('lib')?.paced?.p99Ms ?? NaN) / (get('raw')?.paced?.p99Ms ?? NaN),
  };
}

export function tables(results: Results, config: ReportConfig): string {
  const { runs, pair } = results;
  const at = byKey(runs);
  const raw = (n: number): Run | undefined => at.get(`raw@${n}`);
  const out: string[] = [];
  const t = targets(results, config);
  const mark = (ok: boolean): string => (ok ? '✅' : '❌');

  out.push(`### Targets (see "Targets" above), at ${int(t.n)} connections`, '');
  out.push('| target | required | reached | |', '|---|---|---|---|');
  out.push(`| broadcast deliveries/s vs raw node:http | ≥ 1.00× | ${fix(t.libVsRaw)}× | ${mark(t.libVsRaw >= 1)} |`);
  out.push(`| broadcast deliveries/s vs better-sse | ≥ 2.00× | ${fix(t.libVsBetterSse)}× | ${mark(t.libVsBetterSse >= 2)} |`);
  out.push(`| heap per idle connection (${int(t.heapN)} connections) | ≤ 7 KB | ${fix(t.heapKb)} KB | ${mark(t.heapKb <= 7)} |`);
  out.push(
    `| paced p99 latency vs raw node:http${pair ? ' (both up at once, alternating; median)' : ''} | ≤ 1.10× | ${fix(t.pacedP99VsRaw)}× | ${mark(t.pacedP99VsRaw <= 1.1)} |`,
  );
  if (Number.isFinite(t.libVsRawSocket)) {
    out.push(`| *for reference:* broadcast deliveries/s vs raw, socket.write (pre-framed chunks) | — | ${fix(t.libVsRawSocket)}× | |`);
  }
  out.push('');

  out.push(
    `### Fan-out, burst: broadcasts of a ~100-byte JSON event, ${config.batch} per event-loop turn, ~${int(config.burstDeliveries)} deliveries per run` +
      (config.repeat > 1 ? ` (median of ${config.repeat} runs, min–max in brackets)` : ''),
    '',
  );
  out.push(
    '| connections | server | deliveries/s | × raw | server CPU µs / delivery | × raw | p50 ms | p99 ms | CPU use server / busiest client |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const n of config.sizes) {
    const base = raw(n)?.burst.length ? burstOf(raw(n)!).mid : undefined;
    for (const run of runs.filter((r) => r.n === n && r.burst.length > 0)) {
      const { mid, min, max } = burstOf(run);
      const spread = run.burst.length > 1 ? ` (${int(min)}–${int(max)})` : '';
      out.push(
        `| ${int(n)} | ${NAMES[run.server]} | ${int(mid.perSec)}${spread}${complete(mid)} | ${ratio(mid.perSec, base?.perSec)} | ${fix(mid.cpuPerDeliveryUs)} | ${ratio(mid.cpuPerDeliveryUs, base?.cpuPerDeliveryUs)} | ${fix(mid.p50Ms, 1)} | ${fix(mid.p99Ms, 1)} | ${fix(mid.serverUtil * 100, 0)}% / ${fix(mid.clientUtil * 100, 0)}%${bottleneck(mid)} |`,
      );
    }
  }
  out.push('');

  out.push(
    `### Fan-out, paced: ${int(config.pacedDeliveriesPerSec)} deliveries/s (events/s = ${int(config.pacedDeliveriesPerSec)} / connections) for ${config.pacedSeconds} s` +
      (config.repeat > 1 ? ` (the run with the median p99 of ${config.repeat}; all p99s in brackets)` : ''),
    '',
  );
  out.push('| connections | server | events/s | p50 ms | p99 ms | p99 × raw | server CPU µs / delivery |', '|---:|---|---:|---:|---:|---:|---:|');
  for (const n of config.sizes) {
    const base = raw(n)?.paced;
    for (const run of runs.filter((r) => r.n === n && r.paced)) {
      const p = run.paced!;
      const all = (run.pacedAll?.length ?? 0) > 1 ? ` (${run.pacedAll!.map((x) => fix(x.p99Ms, 1)).join(', ')})` : '';
      out.push(
        `| ${int(n)} | ${NAMES[run.server]} | ${fix(run.pacedRate ?? NaN, 0)} | ${fix(p.p50Ms)}${complete(p)} | ${fix(p.p99Ms)}${all} | ${ratio(p.p99Ms, base?.p99Ms)} | ${fix(p.cpuPerDeliveryUs)} |`,
      );
    }
  }
  out.push('');

  if (pair) {
    out.push(
      `### Paced p99, raw node:http and koa-sse-server up at once (${int(pair.n)} streams each, own clients), runs alternating, ${pair.rounds} rounds`,
      '',
    );
    out.push(
      '| round | raw node:http p99 ms | **koa-sse-server** p99 ms | × raw | raw / lib p50 ms | raw / lib CPU µs / delivery |',
      '|---:|---:|---:|---:|---:|---:|',
    );
    pair.raw.forEach((r, i) => {
      const l = pair.lib[i]!;
      out.push(
        `| ${i + 1} | ${fix(r.p99Ms, 1)}${complete(r)} | ${fix(l.p99Ms, 1)}${complete(l)} | ${ratio(l.p99Ms, r.p99Ms)} | ${fix(r.p50Ms, 1)} / ${fix(l.p50Ms, 1)} | ${fix(r.cpuPerDeliveryUs)} / ${fix(l.cpuPerDeliveryUs)} |`,
      );
    });
    const mr = median(pair.raw.map((p) => p.p99Ms));
    const ml = median(pair.lib.map((p) => p.p99Ms));
    out.push(`| **median** | ${fix(mr, 1)} | ${fix(ml, 1)} | ${ratio(ml, mr)} | | |`, '');
  }

  out.push('### Memory per idle connection (after forced GC, minus the empty server)', '');
  out.push('| connections | server | heap KB / conn | × raw | RSS KB / conn | external KB / conn |', '|---:|---|---:|---:|---:|---:|');
  for (const n of config.memSizes) {
    const base = raw(n)?.mem;
    for (const run of runs.filter((r) => r.n === n && r.mem)) {
      const m = run.mem!;
      out.push(
        `| ${int(n)} | ${NAMES[run.server]} | ${kb(m.heapPerConn)} | ${ratio(m.heapPerConn, base?.heapPerConn)} | ${kb(m.rssPerConn)} | ${kb(m.externalPerConn)} |`,
      );
    }
  }
  out.push('');

  const tn = Math.max(...config.sizes);
  out.push(
    `### Targeted sends: \`sendByUserId\` to random users among ${int(tn)} connections, ${int(config.targetedSends)} sends, ${config.targetedBatch} per event-loop turn`,
    '',
  );
  out.push('| server | sends/s | × raw | server CPU µs / send | × raw | p50 ms | p99 ms |', '|---|---:|---:|---:|---:|---:|---:|');
  const tBase = raw(tn)?.targeted;
  for (const run of runs.filter((r) => r.targeted)) {
    const p = run.targeted!;
    out.push(
      `| ${NAMES[run.server]} | ${int(p.perSec)}${complete(p)} | ${ratio(p.perSec, tBase?.perSec)} | ${fix(p.cpuPerDeliveryUs)} | ${ratio(p.cpuPerDeliveryUs, tBase?.cpuPerDeliveryUs)} | ${fix(p.p50Ms)} | ${fix(p.p99Ms)} |`,
    );
  }
  out.push('');

  out.push(
    `### Connect rate: streams opened per second (${config.clients} client processes, 128 handshakes in flight each), and the server's CPU time per stream opened`,
    '',
  );
  out.push(`| server | ${config.sizes.map((n) => `${int(n)}: conns/s | × raw | CPU µs / conn`).join(' | ')} |`);
  out.push(`|---|${config.sizes.map(() => '---:|---:|---:').join('|')}|`);
  for (const kind of [...new Set(runs.map((r) => r.server))]) {
    const cells = config.sizes.map((n) => {
      const r = at.get(`${kind}@${n}`);
      return r
        ? `${int(r.connect.perSec)}${r.connect.failed ? ` (${r.connect.failed} failed)` : ''} | ${ratio(r.connect.perSec, raw(n)?.connect.perSec)} | ${fix(r.connect.cpuUs ?? NaN, 0)}`
        : '— | — | —';
    });
    out.push(`| ${NAMES[kind]} | ${cells.join(' | ')} |`);
  }
  out.push('');
  return out.join('\n');
}

function versionOf(root: string, pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

export function environment(root: string): string {
  const c = cpus();
  const own = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  return (
    `${c.length} × ${c[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}; ` +
    `Node ${process.version}; koa-sse-server ${own} (this tree), koa ${versionOf(root, 'koa')}, better-sse ${versionOf(root, 'better-sse')}, ` +
    `socket.io ${versionOf(root, 'socket.io')} / socket.io-client ${versionOf(root, 'socket.io-client')}`
  );
}

export function printReport(results: Results, config: ReportConfig, seconds: number, root: string): void {
  console.log('');
  console.log(`# Benchmark (${config.quick ? 'quick' : 'full'}), ${new Date().toISOString()}, ${seconds.toFixed(0)} s`);
  console.log(environment(root));
  console.log('');
  console.log(tables(results, config));
}

// ---- SVG chart of ratios to raw --------------------------------------------------------

interface Metric {
  label: string;
  lowerIsBetter: boolean;
  value: (r: Run) => number | undefined;
  /** Overrides value / raw's value for some servers. */
  ratio?: ((s: ServerKind) => number | undefined) | undefined;
  n: number;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function svgChart({ runs, pair }: Results, config: ReportConfig): string {
  const at = byKey(runs);
  const n = Math.max(...config.sizes);
  const memN = Math.max(...config.memSizes);
  const metrics: Metric[] = [
    { label: `Broadcast deliveries/s, burst (${int(n)} conns)`, lowerIsBetter: false, value: (r) => median(r.burst.map((b) => b.perSec)), n },
    {
      label: `Server CPU per delivery, burst (${int(n)} conns)`,
      lowerIsBetter: true,
      value: (r) => median(r.burst.map((b) => b.cpuPerDeliveryUs)),
      n,
    },
    {
      label: `p99 latency, paced (${int(n)} conns${pair ? '; raw and koa-sse-server: paired runs' : ''})`,
      lowerIsBetter: true,
      value: (r) => r.paced?.p99Ms,
      // With a paired measurement, koa-sse-server's ratio comes from it (median of the paired
      // runs); the others' from their own runs against raw's.
      ratio: pair ? (s) => (s === 'lib' ? median(pair.lib.map((p) => p.p99Ms)) / median(pair.raw.map((p) => p.p99Ms)) : undefined) : undefined,
      n,
    },
    { label: `Heap per idle connection (${int(memN)} conns)`, lowerIsBetter: true, value: (r) => r.mem?.heapPerConn, n: memN },
    { label: `Targeted sends/s (${int(n)} conns)`, lowerIsBetter: false, value: (r) => r.targeted?.perSec, n },
    { label: `Connections accepted/s (${int(n)})`, lowerIsBetter: false, value: (r) => r.connect.perSec, n },
  ];
  const others: ServerKind[] = (['lib', 'raw-socket', 'better-sse', 'socket.io'] as ServerKind[]).filter((s) => runs.some((r) => r.server === s));
  const W = 820;
  const left = 300;
  const plotW = 460;
  const span = 4; // log2 range each side: 1/16× .. 16×
  const x = (ratioValue: number): number => left + plotW / 2 + (Math.max(-span, Math.min(span, Math.log2(ratioValue))) / span) * (plotW / 2);
  const barH = 14;
  const rowH = 19;
  const groupH = 24 + others.length * rowH + 10;
  const top = 64;
  const H = top + metrics.length * groupH + 30;
  const colors: Record<ServerKind, string> = {
    raw: '#888',
    'raw-socket': '#888',
    koa: '#888',
    lib: '#2b6cb0',
    'better-sse': '#d69e2e',
    'socket.io': '#805ad5',
  };
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Ratio to a raw node:http SSE server (1× = raw; log scale)</text>`,
  );
  o.push(
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">Bars point right when better than raw and left when worse; the number is the plain ratio value / raw.</text>`,
  );
  for (const tick of [-4, -3, -2, -1, 0, 1, 2, 3, 4]) {
    const tx = left + plotW / 2 + (tick / span) * (plotW / 2);
    o.push(
      `<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${H - 26}" stroke="${tick === 0 ? '#333' : '#e2e2e2'}" stroke-width="${tick === 0 ? 1.5 : 1}"/>`,
    );
    const label = tick >= 0 ? `${2 ** tick}×` : `1/${2 ** -tick}`;
    o.push(`<text x="${tx}" y="${H - 12}" text-anchor="middle" fill="#555">${label}</text>`);
  }
  metrics.forEach((m, gi) => {
    const gy = top + gi * groupH;
    o.push(`<text x="10" y="${gy + 14}" font-weight="bold">${esc(m.label)}${m.lowerIsBetter ? ' — lower is better' : ' — higher is better'}</text>`);
    const rawRun = at.get(`raw@${m.n}`);
    const base = rawRun ? m.value(rawRun) : undefined;
    others.forEach((s, i) => {
      const y = gy + 24 + i * rowH;
      o.push(`<text x="${left - 10}" y="${y + barH - 3}" text-anchor="end">${esc(PLAIN[s])}</text>`);
      const run = at.get(`${s}@${m.n}`);
      const v = run ? m.value(run) : undefined;
      const r = m.ratio?.(s) ?? (v === undefined || base === undefined || base === 0 ? NaN : v / base);
      if (!Number.isFinite(r) || r <= 0) {
        o.push(`<text x="${left + plotW / 2 + 6}" y="${y + barH - 3}" fill="#999">n/a</text>`);
        return;
      }
      const goodness = m.lowerIsBetter ? 1 / r : r; // > 1 = better than raw
      const x0 = left + plotW / 2;
      const x1 = x(goodness);
      const good = goodness >= 1;
      o.push(
        `<rect x="${Math.min(x0, x1)}" y="${y}" width="${Math.max(1, Math.abs(x1 - x0))}" height="${barH}" fill="${colors[s]}" opacity="${good ? 1 : 0.75}"/>`,
      );
      const tx = good ? Math.max(x0, x1) + 5 : Math.min(x0, x1) - 5;
      o.push(`<text x="${tx}" y="${y + barH - 3}" text-anchor="${good ? 'start' : 'end'}">${r.toFixed(2)}×</text>`);
    });
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}

// ---- BENCHMARKS.md ---------------------------------------------------------------------

export const HEADING = '## Fan-out, memory, targeted sends, connect rate';
const START = '<!-- bench:fanout:start (generated by `npm run bench`; text outside these markers is kept) -->';
const END = '<!-- bench:fanout:end -->';

export function writeReport(results: Results, config: ReportConfig, seconds: number, root: string): void {
  mkdirSync(join(root, 'docs'), { recursive: true });
  writeFileSync(join(root, 'docs', 'bench-ratios.svg'), svgChart(results, config));
  const body = [
    START,
    `Measured ${results.measuredAt ? `${results.measuredAt.slice(0, 16).replace('T', ' ')} UTC` : '(time not recorded)'} with \`npm run ${config.quick ? 'bench:quick' : 'bench'}\` (${seconds.toFixed(0)} s) on ${environment(root)}.`,
    '',
    `**Method.** Every server runs in its own process (\`--expose-gc\`; heap and CPU time are measured inside it); ${config.clients} load-client processes share the connections; all traffic is on 127.0.0.1; two cores for everything. ` +
      'The servers: **koa-sse-server** = Koa 3 + `ssePlugin`, `authenticate` returns `{ id }` from the `access-token` query parameter; ' +
      '**raw node:http** = the same headers and frames, one pre-encoded Buffer per event `res.write`-n to every response, a Set for broadcasts and a Map for targeted sends (a lookup + a write); ' +
      '*(raw, socket.write)* = for reference, a hand-tuned raw server that frames each event once as an HTTP/1.1 chunk and writes it straight to every socket, corked per tick (the technique koa-sse-server uses; ratios stay relative to the `res.write` baseline); ' +
      '**better-sse** = one Session per stream registered on one Channel (`channel.broadcast`), a Map of sessions for targeted sends; ' +
      '**socket.io** = websocket transport only, `io.emit`, a room per user, read by socket.io-client. SSE streams are read by a minimal client (raw TCP, byte scanner). ' +
      "Each event is a ~100-byte JSON object stamped with its send time; latency = receive time − send time, both on the machine's monotonic clock (one clock for all processes). " +
      "Deliveries/s = events received by all clients / (last receipt − first send). Server CPU per delivery = the server's CPU time (user + system) from the first send until everything was received, / deliveries. " +
      `Memory = heapUsed and RSS after forced GC with N idle streams, minus the same server after a warm-up (${50} streams opened and closed, so that code compiled on first use is not counted per connection). ` +
      'A ⚑client mark: the server used < 80% of a core while a client process used > 85%: the load client, not the server, set the rate.',
    '',
    '![Ratios to raw node:http](docs/bench-ratios.svg)',
    '',
    tables(results, config),
    END,
  ].join('\n');
  const file = join(root, 'BENCHMARKS.md');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const s = text.indexOf(START.slice(0, 24));
  const e = text.indexOf(END);
  if (s >= 0 && e > s) {
    text = text.slice(0, s) + body + text.slice(e + END.length);
  } else if (text.includes(HEADING)) {
    const h = text.indexOf(HEADING) + HEADING.length;
    text = text.slice(0, h) + '\n\n' + body + '\n' + text.slice(h);
  } else {
    text = text.replace(/\s*$/, '\n\n') + HEADING + '\n\n' + body + '\n';
  }
  writeFileSync(file, text);
  console.log(`wrote BENCHMARKS.md (section "${HEADING.slice(3)}") and docs/bench-ratios.svg`);
}
