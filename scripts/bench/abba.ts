// The scaffolding of a benchmark that compares servers (or builds, or ways of writing) side by
// side in one run, alternating between them round after round (ABBA) so that the drift of this
// noisy machine hits them alike: each round's order, the table cells that compare each with the
// first (medians of per-round ratios), and a server under test with the load-client processes
// that hold its streams.
import { removeCheckout } from './checkout.js';
import type { Rpc } from './ipc.js';
import { spawn, stop } from './procs.js';
import { median } from './stats.js';

/**
 * The order of round `round` (from 1) over `count` contenders: A B, then B A, then rotated by
 * one every second round (A B C, C B A, B C A, A C B, …), so that over 2 × `count` rounds each
 * goes first twice and last twice, whatever the count (test/unit/bench-order.test.ts). Rotating
 * every round and reversing every second one, as before 2026-12-06 13:40 UTC, undid the
 * rotation for an even count: with two contenders A always went first.
 */
export function abbaOrder(count: number, round: number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  const shift = Math.floor((round - 1) / 2) % count;
  const rotated = [...order.slice(shift), ...order.slice(0, shift)];
  if (round % 2 === 0) rotated.reverse();
  return rotated;
}

/** Each round's `value` of `samples` over the reference's of the same round. */
export function perRound<T>(samples: T[], ref: T[], value: (sample: T) => number): number[] {
  return samples.map((s, k) => value(s) / value(ref[k]!));
}

/** The table cell comparing with the reference: the median of the per-round ratios, and their range (`1.234× (1.10–1.31)`). */
export function ratioCell(ratios: number[], digits: number): string {
  return `${median(ratios).toFixed(digits)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
}

/** A server under test, with the load clients that hold its streams. */
export interface BenchServer {
  label: string;
  rpc: Rpc;
  clients: Rpc[];
  /** The checkout of its build, removed when it stops. */
  dir?: string;
}

/**
 * Starts the server `file` (relative to scripts/bench, run with --expose-gc and `execArgv`),
 * then `clients` SSE load clients (client.ts) pointed at the port it answers.
 */
export async function startServer(o: {
  file: string;
  label: string;
  env: NodeJS.ProcessEnv;
  execArgv?: string[];
  dir: string | undefined;
  clients: number;
}): Promise<BenchServer> {
  const { rpc, ready: port } = await spawn(o.file, [], ['--expose-gc', ...(o.execArgv ?? [])], o.label, o.env);
  const clients = await Promise.all(
    Array.from({ length: o.clients }, (_, i) => spawn('client.ts', ['sse', String(port)], [], `${o.label} client ${i}`).then((c) => c.rpc)),
  );
  return { label: o.label, rpc, clients, dir: o.dir };
}

/** What a load client answers for the streams it opened (µs on the monotonic clock). */
export interface Opened {
  start: number;
  end: number;
  failed: number;
  firstError?: string;
}

/**
 * Opens streams 0 … n-1 to `server`, split evenly over its clients, `concurrency` handshakes
 * in flight each, client `i` from the source addresses `sources(i)`. Throws when one failed.
 */
export async function openStreams(server: BenchServer, n: number, concurrency: number, sources: (client: number) => string[]): Promise<Opened[]> {
  const share = Math.ceil(n / server.clients.length);
  const opened = await Promise.all(
    server.clients.map((c, i) =>
      c.call<Opened>('connect', { from: i * share, to: Math.min(n, (i + 1) * share), concurrency, localAddresses: sources(i) }, 120_000),
    ),
  );
  const failed = opened.reduce((s, o) => s + o.failed, 0);
  if (failed > 0) throw new Error(`${server.label}: ${failed} streams failed: ${opened.find((o) => o.firstError)?.firstError}`);
  return opened;
}

/** Stops a server's clients, then the server, and removes its checkout. */
export async function shutDown(server: BenchServer): Promise<void> {
  for (const c of server.clients) await stop(c);
  await stop(server.rpc);
  if (server.dir !== undefined) removeCheckout(server.dir);
}
