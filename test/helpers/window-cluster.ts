import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { eventually } from './cluster.js';
import { audit, ResumingPage } from './resuming-page.js';

// Three-node clusters of test/fixtures/window-node.ts processes for the recovery-window tests
// (LAN and Redis), the pages' targets, and the report of what they saw.

/** The pages: their connect query and the kinds of send that reach them. */
export const PAGES: { query: string; kinds: string[] }[] = [
  { query: 'access-token=p0@t0&channel=ch', kinds: ['user', 'tenant', 'channel', 'all'] },
  { query: 'access-token=p0@t0', kinds: ['user', 'tenant', 'all'] },
  { query: 'access-token=p1@t0&channel=ch', kinds: ['tenant', 'channel', 'all'] },
  { query: 'access-token=p1@t1', kinds: ['all'] },
  { query: 'access-token=p2@t1&channel=ch', kinds: ['channel', 'all'] },
  { query: 'access-token=p2@t1', kinds: ['all'] },
];

export interface WindowNode {
  name: string;
  base: string;
  up: boolean;
  peers: number;
  child: ChildProcess;
  /** Resolves with the first line that `match` accepts (lines already seen included). */
  line: (match: (msg: Record<string, unknown>) => boolean, ms?: number) => Promise<Record<string, unknown>>;
  command: (cmd: Record<string, unknown>) => void;
  exited: Promise<void>;
  /** The node's last `{progress, sender}` line. */
  lastProgress: () => Record<string, unknown>;
}

/** A node of test/fixtures/window-node.ts in a child process, ready; SIGKILLed at the end if still alive. */
export async function startNode(t: ExecutionContext, name: string, env: Record<string, string>): Promise<WindowNode> {
  const child = spawn(process.execPath, ['--import=tsx', 'test/fixtures/window-node.ts'], {
    env: { ...process.env, NAME: name, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  const node: WindowNode = {
    name,
    base: '',
    up: false,
    peers: 0,
    child,
    exited,
    lastProgress: () => [...lines].reverse().find((m) => typeof m.progress === 'number') ?? { progress: 0, sender: '' },
    command: (cmd) => void child.stdin!.write(JSON.stringify(cmd) + '\n'),
    line: async (match, ms = 15_000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = lines.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`node ${name}: no such line within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const msg = JSON.parse(text) as Record<string, unknown>;
    lines.push(msg);
    if (Array.isArray(msg.peers)) node.peers = msg.peers.length;
    for (const w of waiters.splice(0)) w();
  });
  const ready = await node.line((m) => m.ready === true);
  node.base = `http://127.0.0.1:${String(ready.port)}/sse/test`;
  return node;
}

/** Round-robin over the nodes marked up: the load balancer in front of the pages. */
export function balancer(nodes: () => WindowNode[]): () => string {
  let i = 0;
  return () => {
    const up = nodes().filter((n) => n.up);
    return up[i++ % up.length]!.base;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Logs and answers the sums over the pages: events meant for them, seen, missed, duplicates shown, out of order per sender. */
export function report(
  t: ExecutionContext,
  pages: ResumingPage[],
  senders: Map<string, number>,
): { missed: number; duplicates: number; outOfOrder: number } {
  let sum = { expected: 0, seen: 0, missed: 0, duplicates: 0, outOfOrder: 0 };
  for (const [i, page] of pages.entries()) {
    const a = audit(page, senders, PAGES[i]!.kinds);
    if (a.missing.length > 0) t.log(`page ${i} missed`, a.missing.slice(0, 20), page.finishes);
    sum = {
      expected: sum.expected + a.expected,
      seen: sum.seen + a.seen,
      missed: sum.missed + a.missed,
      duplicates: sum.duplicates + a.duplicates,
      outOfOrder: sum.outOfOrder + a.outOfOrder,
    };
  }
  const finishes = pages.flatMap((p) => p.finishes.filter((f) => f.resumed));
  const dropped = pages.reduce((n, p) => n + p.dropped, 0);
  t.log(
    `events meant for the pages ${sum.expected}, seen ${sum.seen}, duplicates shown ${sum.duplicates}, missed ${sum.missed}, ` +
      `out of order ${sum.outOfOrder}; reconnects ${finishes.length} (recovered ${finishes.filter((f) => f.recovered).length}), ` +
      `replayed overlap dropped by id ${dropped}`,
  );
  return sum;
}

/** A started three-node cluster: its nodes (up), and a restart of node i (back among its peers, up). */
export interface WindowCluster {
  nodes: WindowNode[];
  restart: (i: number) => Promise<WindowNode>;
}

/**
 * Pages behind a round-robin balancer through a rolling restart (each node told to exit, then
 * started again) under about 100 sends/s of each kind: every event once, in order per sender.
 */
export async function rollingRestart(t: ExecutionContext, { nodes, restart }: WindowCluster): Promise<ResumingPage[]> {
  const pick = balancer(() => nodes);
  const pages = PAGES.map((p) => new ResumingPage(p.query, pick));
  t.teardown(() => Promise.all(pages.map((p) => p.close())).then(() => undefined));
  await eventually(() => pages.every((p) => p.connected), 'every page connected', 10_000);
  // About 100 sends/s of each kind across the cluster.
  for (const n of nodes) n.command({ cmd: 'stream', perSecond: 34 });
  const senders = new Map<string, number>();
  await sleep(1000);
  for (let i = 0; i < 3; i++) {
    const old = nodes[i]!;
    old.up = false;
    old.command({ cmd: 'exit' });
    const stopped = await old.line((m) => typeof m.stopped === 'number');
    senders.set(String(stopped.sender), Number(stopped.stopped));
    await old.exited;
    const fresh = await restart(i);
    fresh.command({ cmd: 'stream', perSecond: 34 });
    await eventually(() => pages.every((p) => p.connected), 'every page back', 10_000);
    await sleep(1000);
  }
  for (const node of nodes) {
    node.command({ cmd: 'stop' });
    const stopped = await node.line((m) => typeof m.stopped === 'number');
    senders.set(String(stopped.sender), Number(stopped.stopped));
  }
  // What is still on its way: a resume held while a peer answers (the LAN nodes' timeoutMs, 2 s).
  await sleep(2500);
  t.is(senders.size, 6, 'six sender incarnations');
  const sum = report(t, pages, senders);
  t.is(sum.duplicates, 0);
  t.is(sum.missed, 0);
  t.is(sum.outOfOrder, 0);
  return pages;
}

/**
 * Pages behind a round-robin balancer while node 2 is SIGKILLed under the same stream: its
 * pages come back on the others and miss nothing the survivors sent (`victimSends`: nor what
 * the killed node had sent).
 */
export async function killOne(t: ExecutionContext, { nodes }: WindowCluster, victimSends: boolean): Promise<ResumingPage[]> {
  const pick = balancer(() => nodes);
  const pages = PAGES.map((p) => new ResumingPage(p.query, pick));
  t.teardown(() => Promise.all(pages.map((p) => p.close())).then(() => undefined));
  await eventually(() => pages.every((p) => p.connected), 'every page connected', 10_000);
  for (const n of nodes) n.command({ cmd: 'stream', perSecond: 34 });
  await sleep(1000);
  const victim = nodes[2]!;
  const lastProgress = victim.lastProgress();
  victim.up = false;
  victim.child.kill('SIGKILL');
  await victim.exited;
  await sleep(2000);
  await eventually(() => pages.every((p) => p.connected), 'every page back', 10_000);
  const senders = new Map<string, number>();
  // What the victim had sent when it last said so (all of it in Redis, which keeps it).
  if (victimSends) senders.set(String(lastProgress.sender), Number(lastProgress.progress));
  for (const node of nodes.slice(0, 2)) {
    node.command({ cmd: 'stop' });
    const stopped = await node.line((m) => typeof m.stopped === 'number');
    senders.set(String(stopped.sender), Number(stopped.stopped));
  }
  // What is still on its way: a resume held while a peer answers (the LAN nodes' timeoutMs, 2 s).
  await sleep(2500);
  const moved = pages.filter((p) => p.finishes.some((f) => f.node === victim.base));
  t.true(moved.length > 0, 'some pages were on the killed node');
  t.true(
    moved.every((p) => p.finishes.at(-1)!.node !== victim.base),
    'and came back elsewhere',
  );
  const sum = report(t, pages, senders);
  t.is(sum.duplicates, 0);
  t.is(sum.missed, 0, victimSends ? "nothing sent is missing, the killed node's sends included" : 'nothing the survivors sent is missing');
  t.is(sum.outOfOrder, 0);
  return pages;
}
