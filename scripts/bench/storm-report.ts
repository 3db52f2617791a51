// Tables and the SVG chart of the reconnect-storm benchmark (storm.ts).

export interface StormRun {
  label: string;
  kind: 'lib' | 'raw' | 'better-sse' | 'socket.io' | 'cluster';
  /** Node loss: the LAN engine (a SQLite file per node), the same with two copies of each durable message (`qos.replication`), or the Redis engine (one queue in Redis). */
  engine?: 'lan' | 'lan-copies' | 'redis';
  spreadMs?: number | undefined;
  /** Streams that had to come back. */
  streams: number;
  back: number;
  complete: boolean;
  /** From the start of the shutdown (or the kill), ms. */
  p99BackMs: number | undefined;
  allBackMs: number | undefined;
  /** Durable messages that should arrive (undefined: no durable delivery); node loss: all those of the moved users. */
  durableExpected: number | undefined;
  /** Distinct durable messages delivered (a stream and a message counted once). */
  durable: number;
  /** When the last of `durableExpected` arrived, if all did. */
  durableDoneMs: number | undefined;
  /** When the last distinct durable message arrived (none: undefined). */
  lastDurableMs?: number | undefined;
  /** Durable messages written again to a stream that had them since the start (at-least-once). */
  duplicates?: number;
  /** Node loss: durable messages of the moved users sent through the killed node, and how many of them were delivered. */
  viaDead?: number;
  viaDeadDelivered?: number;
  /** The old server's `close()` + closing its sockets, and until the new one listened (restarts), from the start. */
  closeMs?: number;
  downMs?: number;
  /** Server CPU (all surviving / new server processes) from the new server's start until 100 % back. */
  cpuMs: number;
  cpuAvg: number;
  cpuPeak: number;
  /** The redis-server's CPU over the same span (Redis engine). */
  redisCpuMs?: number;
  redisCpuAvg?: number;
  redisCpuPeak?: number;
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
  const losses = runs.filter((x) => x.kind === 'cluster');
  if (losses.length > 0) out.push(...nodeLossTable(losses, c));
  return out.join('\n');
}

const ENGINES = {
  lan: 'LAN engine: static peers, a SQLite file per node, `qos.replication: { copies: 1 }`',
  'lan-copies': 'LAN engine, `qos.replication: { copies: 2 }`: each durable message in the files of two nodes',
  redis: 'Redis engine: `cluster: { redis }` + `qos: { redis }`, one redis-server (AOF everysec)',
};

/** The node-loss runs side by side, one column per engine. */
function nodeLossTable(runs: StormRun[], c: StormConfig): string[] {
  const row = (measure: string, cell: (r: StormRun) => string): string => `| ${measure} | ${runs.map(cell).join(' | ')} |`;
  const dead = runs[0]!.viaDead ?? 0;
  const total = runs[0]!.durableExpected ?? 0;
  return [
    `### Node loss: 3 koa-sse-server nodes, ${int(c.n)} streams (${int(runs[0]!.streams)} on the node killed), ${c.perUser} durable messages pending per user, sent through the 3 nodes in turn`,
    '',
    [
      `Of the moved users' ${int(total)} durable messages, ${int(dead)} were sent through the node killed.`,
      ...(runs.some((r) => r.engine !== 'redis') ? ['On the LAN engine that node owns them: they are in its SQLite file.'] : []),
      ...(runs.some((r) => r.engine === 'lan-copies')
        ? ['With `qos.replication` each is also in the file of a second node, which serves it while the owner is down.']
        : []),
      ...(runs.some((r) => r.engine === 'redis')
        ? [
            'On the Redis engine no node owns a message: every node writes to the one queue in Redis (one store tag for all), so the survivors replay those too.',
          ]
        : []),
      'A message counts once per stream; one written again to the same stream is a duplicate.',
    ].join(' '),
    '',
    `| measure | ${runs.map((r) => ENGINES[r.engine ?? 'lan']).join(' | ')} |`,
    `|---|${runs.map(() => '---:|').join('')}`,
    row(
      'streams of the killed node back on the other two: 99 % / 100 %',
      (r) => `${ms(r.p99BackMs)} / ${ms(r.allBackMs)}${r.complete ? '' : ` (${int(r.back)} / ${int(r.streams)} at the limit)`}`,
    ),
    row('durable messages of the moved users sent through the survivors: delivered', (r) => {
      const via = r.durableExpected! - r.viaDead!;
      return `${int(r.durable - r.viaDeadDelivered!)} / ${int(via)}`;
    }),
    row('sent through the killed node: delivered', (r) => {
      const got = `${int(r.viaDeadDelivered!)} / ${int(r.viaDead!)}`;
      const missing = r.viaDead! - r.viaDeadDelivered!;
      if (missing === 0)
        return `${got}${r.engine === 'redis' ? ' (from the shared queue in Redis)' : r.engine === 'lan-copies' ? ' (from their second copies)' : ''}`;
      return r.engine === 'lan' ? `${got}: pending in its file until it returns and the user reconnects` : `${got} (${int(missing)} missing)`;
    }),
    row('all durable messages of the moved users: delivered', (r) =>
      r.durable >= r.durableExpected!
        ? `**${int(r.durable)} / ${int(r.durableExpected!)} (none stranded)**, all by ${ms(r.durableDoneMs)}`
        : `${int(r.durable)} / ${int(r.durableExpected!)} (${int(r.durableExpected! - r.durable)} stranded), the last delivered by ${ms(r.lastDurableMs)}`,
    ),
    row('durable messages written twice to a stream (at-least-once duplicates)', (r) => int(r.duplicates ?? 0)),
    row(
      'CPU of the two survivors until 100 % back: total / avg / busiest second (of one core; two processes)',
      (r) => `${int(r.cpuMs)} ms / ${pct(r.cpuAvg)} / ${pct(r.cpuPeak)}`,
    ),
    row('redis-server CPU, same span', (r) =>
      r.redisCpuMs === undefined ? '—' : `${int(r.redisCpuMs)} ms / ${pct(r.redisCpuAvg!)} / ${pct(r.redisCpuPeak!)}`,
    ),
    row(
      `live sends ${c.liveRate}/s to the moved users: p50 / p99 (received / sent)`,
      (r) => `${r.liveP50Ms.toFixed(1)} / ${r.liveP99Ms.toFixed(1)} ms (${int(r.liveReceived)} / ${int(r.liveSent)})`,
    ),
    row('connect attempts (failed)', (r) => `${int(r.attempts)} (${int(r.failures)})`),
    '',
  ];
}

// One per run of a full run (3 spreads, 3 other servers, 2 node losses): no two lines share a colour.
const COLORS = ['#1f6feb', '#2da44e', '#bf8700', '#cf222e', '#8250df', '#57606a', '#e16f24', '#1b7c83'];

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
    // 99 % sits 1 % below 100 %: its label goes inside the plot, at the right, under its line.
    parts.push(
      share === 0.99
        ? `<text x="${left + plotW - 4}" y="${y(share) + 12}" text-anchor="end" fill="#888">99 %</text>`
        : `<text x="${left - 6}" y="${y(share) + 4}" text-anchor="end">${Math.round(share * 100)} %</text>`,
    );
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
  if (r.kind === 'cluster')
    return `cluster (${r.engine === 'redis' ? 'Redis' : r.engine === 'lan-copies' ? 'LAN, 2 copies' : 'LAN, 1 copy'}), node killed (${r.spreadMs! / 1000} s)`;
  return r.kind === 'raw' ? 'raw node:http' : r.kind;
}
