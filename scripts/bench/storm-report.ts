// Tables and the SVG chart of the reconnect-storm benchmark (storm.ts).

export interface StormRun {
  label: string;
  kind: 'lib' | 'raw' | 'better-sse' | 'socket.io' | 'cluster';
  spreadMs?: number | undefined;
  /** Streams that had to come back. */
  streams: number;
  back: number;
  complete: boolean;
  /** From the start of the shutdown (or the kill), ms. */
  p99BackMs: number | undefined;
  allBackMs: number | undefined;
  /** Durable messages that could be delivered (undefined: no durable delivery). */
  durableExpected: number | undefined;
  durable: number;
  durableDoneMs: number | undefined;
  /** Owned by a killed node: not deliverable until it returns. */
  ownedByDead?: number;
  /** The old server's `close()` + closing its sockets, and until the new one listened (restarts), from the start. */
  closeMs?: number;
  downMs?: number;
  /** Server CPU (all surviving / new server processes) from the new server's start until 100 % back. */
  cpuMs: number;
  cpuAvg: number;
  cpuPeak: number;
  liveSent: number;
  liveReceived: number;
  liveP50Ms: number;
  liveP99Ms: number;
  attempts: number;
  failures: number;
  /** Sorted times (ms since the start) at which streams came back. */
  curve: number[];
}

const int = (v: number): string => Math.round(v).toLocaleString('en');
const ms = (v: number | undefined): string => (v === undefined ? '—' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${int(v)} ms`);
const pct = (v: number): string => (Number.isFinite(v) ? `${Math.round(v * 100)} %` : '—');
const name = (r: StormRun): string =>
  r.kind === 'lib'
    ? `**koa-sse-server**, \`reconnectTimeMs\` ${int(r.spreadMs!)}`
    : r.kind === 'socket.io'
      ? 'socket.io (ws)'
      : r.kind === 'raw'
        ? 'raw node:http'
        : r.kind;

export interface StormConfig {
  n: number;
  perUser: number;
  liveRate: number;
  clients: number;
  header: string;
}

export function stormTables(runs: StormRun[], c: StormConfig): string {
  const out: string[] = [c.header, ''];
  const restarts = runs.filter((r) => r.kind !== 'cluster');
  if (restarts.length > 0) {
    out.push(
      `### Graceful restart: ${int(c.n)} streams, ${c.perUser} durable messages pending per user, live sends ${c.liveRate}/s to random users`,
      '',
      '| server | back: 99 % | 100 % | durable delivered (all) | old server close + new listening | server CPU until 100 % back: total / avg / busiest second | live sends p50 / p99 (received / sent) | connect attempts (failed) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const r of restarts) {
      const durable =
        r.durableExpected === undefined ? 'n/a: no durable delivery' : `${ms(r.durableDoneMs)} (${int(r.durable)} / ${int(r.durableExpected)})`;
      out.push(
        `| ${name(r)} | ${ms(r.p99BackMs)} | ${ms(r.allBackMs)}${r.complete ? '' : ` (${int(r.back)} / ${int(r.streams)} back at the limit)`} | ${durable} | ${ms(r.closeMs)} / ${ms(r.downMs)} | ${int(r.cpuMs)} ms / ${pct(r.cpuAvg)} / ${pct(r.cpuPeak)} | ${r.liveP50Ms.toFixed(1)} / ${r.liveP99Ms.toFixed(1)} ms (${int(r.liveReceived)} / ${int(r.liveSent)}) | ${int(r.attempts)} (${int(r.failures)}) |`,
      );
    }
    out.push('');
  }
  for (const r of runs.filter((x) => x.kind === 'cluster')) {
    out.push(
      `### Node loss: 3 koa-sse-server nodes, ${int(c.n)} streams (${int(r.streams)} on the node killed), ${c.perUser} durable messages pending per user, owners spread over the 3 nodes`,
      '',
      '| measure | result |',
      '|---|---:|',
      `| streams of the killed node back on the other two: 99 % / 100 % | ${ms(r.p99BackMs)} / ${ms(r.allBackMs)}${r.complete ? '' : ` (${int(r.back)} / ${int(r.streams)} at the limit)`} |`,
      `| durable messages of the moved users owned by the survivors: delivered | ${int(r.durable)} / ${int(r.durableExpected!)}, all by ${ms(r.durableDoneMs)} |`,
      `| durable messages owned by the killed node | ${int(r.ownedByDead ?? 0)}: not delivered (pending in its file until it returns and the user reconnects) |`,
      `| CPU of the two survivors until 100 % back: total / avg / busiest second | ${int(r.cpuMs)} ms / ${pct(r.cpuAvg)} / ${pct(r.cpuPeak)} (of one core; two processes) |`,
      `| live sends ${c.liveRate}/s to the moved users: p50 / p99 (received / sent) | ${r.liveP50Ms.toFixed(1)} / ${r.liveP99Ms.toFixed(1)} ms (${int(r.liveReceived)} / ${int(r.liveSent)}) |`,
      `| connect attempts (failed) | ${int(r.attempts)} (${int(r.failures)}) |`,
      '',
    );
  }
  return out.join('\n');
}

const COLORS = ['#1f6feb', '#2da44e', '#bf8700', '#cf222e', '#8250df', '#57606a', '#e16f24'];

/** Share of streams back over time, one line per run. */
export function stormChart(runs: StormRun[]): string {
  const W = 820;
  const H = 360;
  const left = 60;
  const top = 30;
  const plotW = 500;
  const plotH = 260;
  const maxMs = Math.max(1000, ...runs.map((r) => r.curve.at(-1) ?? 0));
  const step = maxMs > 20_000 ? 5000 : maxMs > 8000 ? 2000 : 1000;
  const xMax = Math.ceil(maxMs / step) * step;
  const x = (t: number): number => left + (t / xMax) * plotW;
  const y = (share: number): number => top + plotH - share * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${left}" y="18" font-weight="bold">Streams back after a restart / node loss (share over time since the shutdown)</text>`,
  ];
  for (let t = 0; t <= xMax; t += step) {
    parts.push(`<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${top + plotH}" stroke="#eee"/>`);
    parts.push(`<text x="${x(t)}" y="${top + plotH + 16}" text-anchor="middle">${t / 1000} s</text>`);
  }
  for (const share of [0, 0.25, 0.5, 0.75, 0.99, 1]) {
    parts.push(`<line x1="${left}" y1="${y(share)}" x2="${left + plotW}" y2="${y(share)}" stroke="${share === 0.99 ? '#ccc' : '#eee'}"/>`);
    parts.push(`<text x="${left - 6}" y="${y(share) + 4}" text-anchor="end">${Math.round(share * 100)} %</text>`);
  }
  runs.forEach((r, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts: string[] = [`${x(0).toFixed(1)},${y(0).toFixed(1)}`];
    // One point per 1/200 of the streams keeps the file small.
    const every = Math.max(1, Math.floor(r.curve.length / 200));
    for (let k = 0; k < r.curve.length; k += every) pts.push(`${x(r.curve[k]!).toFixed(1)},${y((k + 1) / r.streams).toFixed(1)}`);
    if (r.curve.length > 0) pts.push(`${x(r.curve.at(-1)!).toFixed(1)},${y(r.curve.length / r.streams).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    const ly = top + 10 + i * 20;
    parts.push(`<line x1="${left + plotW + 20}" y1="${ly}" x2="${left + plotW + 40}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${left + plotW + 46}" y="${ly + 4}">${legend(r)}</text>`);
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function legend(r: StormRun): string {
  if (r.kind === 'lib') return `koa-sse-server, spread ${r.spreadMs! / 1000} s`;
  if (r.kind === 'cluster') return `cluster, node killed (${r.spreadMs! / 1000} s)`;
  return r.kind === 'raw' ? 'raw node:http' : r.kind;
}
