// Durable delivery without a broker (issue 29), in the LAN lab: three nodes, each a host of
// its own (a network namespace on a private bridge), each with its own SQLite file, finding
// each other by mDNS on the library's defaults; `qos.replication` keeps every durable message
// on two nodes before its send resolves. Users are pages on a fourth host (a browser host,
// test/fixtures/durable-pages.ts) that acknowledge with `ack=1`, as the browser client does,
// and come back to the nodes a load balancer keeps. Needs root; under CI a skip is a failure.
//
// Counts are printed (t.log) and asserted: every message whose send resolved is delivered to
// its user (lost = 0), duplicates are counted and bounded, nothing acknowledged comes back.
import test, { type ExecutionContext } from 'ava';
import { rmSync } from 'node:fs';
import type { LanHost } from '../helpers/lan.js';
import { NsProcess, privateLan } from '../helpers/netns.js';
import { allPeers, labUnavailable, peersAre, startNode, until, type LabNode } from './lab.js';

const unavailable = labUnavailable();
if (unavailable) console.log(`# qos-replication-lan: skipped: ${unavailable}`);
const lanTest = unavailable ? test.skip : test.serial;

/**
 * Two copies of every durable message (the default, said out loud). A replica's commit may
 * wait 5 s instead of the default `cluster.timeoutMs` (1 s): on this shared 2-core machine a
 * loaded replica can take longer, and these tests are about loss, not speed (a copy counted
 * missing under load would make a send resolve with one copy, `whenShort: 'degrade'`).
 */
const REPLICATION = { copies: 2, timeoutMs: 5000 };
const optionsWith = (replication: Record<string, unknown> = REPLICATION): string => JSON.stringify({ qos: { replication } });

/** `host:port` of a node's web server, as a page on the browser host reaches it. */
const web = (node: LabNode): string => `${node.host.address}:8080`;

/** One durable send of a test: where it went, and what its promise said. */
interface Send {
  seq: number;
  user: string;
  via: string;
  state: 'pending' | 'resolved' | 'failed';
  messageId?: string;
  copies?: number;
  at: number;
}

/** The pages of a browser host: one stream per user, acking; their report lines. */
class Pages {
  readonly proc: NsProcess;

  constructor(t: ExecutionContext, host: LanHost) {
    this.proc = new NsProcess(t, host.ns, ['test/fixtures/durable-pages.ts'], {});
  }

  async ready(): Promise<void> {
    await this.proc.waitFor((m) => m.ready === true, 'the pages process');
  }

  /** The balancer's live list: where streams go when they come back. */
  live(nodes: LabNode[]): void {
    this.proc.send({ cmd: 'live', nodes: nodes.map(web) });
  }

  /** Opens a page per user, user i on node i mod nodes.length, and waits until each is connected. */
  async open(users: string[], nodes: LabNode[]): Promise<void> {
    const from = this.proc.messages.length;
    users.forEach((user, i) => this.proc.send({ cmd: 'open', user, node: web(nodes[i % nodes.length]!) }));
    await this.connected(users, from);
  }

  /** Waits until every one of `users` had a connect-finish after message index `from`. */
  async connected(users: string[], from: number, timeoutMs = 20_000): Promise<void> {
    for (const user of users) await this.proc.waitFor((m) => m.connected === user, `${user} connected`, timeoutMs, from);
  }

  /** Durable events written to the pages (each write), from message index `from`. */
  events(from = 0): { user: string; id: string; data: unknown; node: string; at: number }[] {
    return this.proc.messages.slice(from).filter((m) => typeof m.id === 'string') as unknown as ReturnType<Pages['events']>;
  }

  /** Ids acknowledged (ack.do answered `acked` ≥ 1), from message index `from`. */
  acked(from = 0): Set<string> {
    const ids = new Set<string>();
    for (const m of this.proc.messages.slice(from)) if (Number(m.acked) >= 1) for (const id of m.ids as string[]) ids.add(id);
    return ids;
  }

  /** Waits until every `[user, id]` was written to that user's page. */
  async delivered(wanted: Send[], what: string, timeoutMs: number): Promise<void> {
    await this.proc.waitFor(
      () => {
        const seen = new Set(this.events().map((e) => `${e.user} ${e.id}`));
        return wanted.every((s) => seen.has(`${s.user} ${s.messageId}`));
      },
      what,
      timeoutMs,
    );
  }
}

/** Fires one durable send through `node`; the Send records its outcome. */
function durable(node: LabNode, send: Send): Promise<void> {
  return node.proc.request({ cmd: 'durable', users: [send.user], event: 'bell', data: { seq: send.seq } }, 30_000).then(
    (answer) => {
      if (typeof answer.messageId === 'string') {
        send.state = 'resolved';
        send.messageId = answer.messageId;
        send.copies = Number(answer.copies);
      } else send.state = 'failed';
    },
    () => void (send.state = 'failed'),
  );
}

/** What the pages got of the resolved sends: delivered, lost, duplicates (writes of an id to its user beyond the first), misdelivered. */
function tally(pages: Pages, sends: Send[]): { delivered: number; lost: Send[]; duplicates: number; misdelivered: number; extra: number } {
  const writes = new Map<string, number>();
  const byId = new Map(sends.filter((s) => s.messageId !== undefined).map((s) => [s.messageId!, s]));
  let misdelivered = 0;
  for (const e of pages.events()) {
    const key = `${e.user} ${e.id}`;
    writes.set(key, (writes.get(key) ?? 0) + 1);
    const send = byId.get(e.id);
    if (send !== undefined && send.user !== e.user) misdelivered++;
  }
  const resolved = sends.filter((s) => s.state === 'resolved');
  const lost = resolved.filter((s) => !writes.has(`${s.user} ${s.messageId}`));
  const duplicates = [...writes.values()].reduce((n, w) => n + w - 1, 0);
  // Sends whose promise did not resolve (through the node killed) but whose message arrived: at-least-once, not a loss.
  const seqs = new Set(pages.events().map((e) => (e.data as { seq?: number }).seq));
  const extra = sends.filter((s) => s.state !== 'resolved' && seqs.has(s.seq)).length;
  return { delivered: resolved.length - lost.length, lost, duplicates, misdelivered, extra };
}

const histogram = (values: unknown[]): string => {
  const counts: Record<string, number> = {};
  for (const v of values) counts[String(v)] = (counts[String(v)] ?? 0) + 1;
  return JSON.stringify(counts);
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Removes a SQLite file and its WAL and shared-memory files: the node's disk is gone. */
function wipe(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(file + suffix, { force: true });
}

lanTest(
  'kill and wipe: a node SIGKILLed and its SQLite file deleted during a steady stream of durable sends; every send that resolved is delivered on the survivors',
  async (t) => {
    t.timeout(180_000);
    const lan = await privateLan(t, 4);
    const nodes = await Promise.all(lan.hosts.slice(0, 3).map((h) => startNode(t, h, { qos: true, HUB_OPTIONS: optionsWith() })));
    const [a, b, c] = nodes as [LabNode, LabNode, LabNode];
    await allPeers(nodes);
    const pages = new Pages(t, lan.hosts[3]!);
    await pages.ready();
    pages.live(nodes);
    // Nine users online, three on each node; six away until after the kill (their messages wait in the stores).
    const online = Array.from({ length: 9 }, (_, i) => `u${i}`);
    const away = Array.from({ length: 6 }, (_, i) => `w${i}`);
    const users = [...online, ...away];
    await pages.open(online, nodes);

    // 20 sends/s for 6 s, through the three nodes in turn, to users on every node; C is
    // SIGKILLed after 3 s (its file deleted at once), then the sends go through A and B.
    const RATE = 20;
    const TOTAL = 120;
    const KILL_AT = 60;
    const sends: Send[] = [];
    const pending: Promise<void>[] = [];
    let alive = nodes;
    const t0 = Date.now();
    let killedAt = 0;
    for (let seq = 0; seq < TOTAL; seq++) {
      const due = t0 + (seq * 1000) / RATE;
      if (due > Date.now()) await sleep(due - Date.now());
      if (seq === KILL_AT) {
        c.proc.kill();
        killedAt = Date.now();
        alive = [a, b];
        // The load balancer's health check takes C out; its users' pages come back on A and B.
        pages.live(alive);
        await c.proc.exited();
        wipe(c.qosFile!);
      }
      const via = alive[seq % alive.length]!;
      const send: Send = { seq, user: users[(seq + Math.floor(seq / 3)) % users.length]!, via: via.nodeId, state: 'pending', at: Date.now() };
      sends.push(send);
      pending.push(durable(via, send));
    }
    await Promise.all(pending);
    await Promise.all([peersAre(a, [b.nodeId], [c.nodeId], 'after the kill', 20_000), peersAre(b, [a.nodeId], [c.nodeId], 'after the kill', 20_000)]);
    const from = pages.proc.messages.length;
    for (const user of away) pages.proc.send({ cmd: 'open', user });
    await pages.connected(away, from);
    const resolved = sends.filter((s) => s.state === 'resolved');
    try {
      await pages.delivered(resolved, 'every resolved send delivered to its user', 60_000);
    } catch (err) {
      t.log(String(err).slice(0, 300));
    }
    const { delivered, lost, duplicates, misdelivered, extra } = tally(pages, sends);
    const viaC = resolved.filter((s) => s.via === c.nodeId);
    const waiting = viaC.filter((s) => away.includes(s.user));
    t.log(
      `sent ${sends.length} (${sends.filter((s) => s.via === c.nodeId).length} through C, killed and wiped ${killedAt - t0} ms in), resolved ${resolved.length} ` +
        `(${viaC.length} through C, ${waiting.length} of them for users away), failed or unanswered ${sends.length - resolved.length}; delivered ${delivered}, lost ${lost.length}, ` +
        `duplicates ${duplicates}, delivered though unresolved ${extra}; copies when resolved ${histogram(resolved.map((s) => s.copies))}`,
    );
    if (lost.length > 0) t.log('lost:', JSON.stringify(lost.slice(0, 10)));
    t.is(lost.length, 0, 'every message whose send resolved is delivered');
    t.is(misdelivered, 0, 'to its own user only');
    t.true(waiting.length >= 5, 'C held messages for users away when it died');
    t.true(
      viaC.every((s) => s.copies! >= 2),
      `every send resolved through C was on two nodes: ${histogram(viaC.map((s) => s.copies))}`,
    );
  },
);

lanTest(
  'a partition {A, B} | {C} with durable sends on both sides, then the heal: no resolved send lost, duplicates counted and bounded',
  async (t) => {
    t.timeout(180_000);
    const lan = await privateLan(t, 3);
    const [hostA, hostB, hostC] = lan.hosts as [LanHost, LanHost, LanHost];
    const nodes = await Promise.all([hostA, hostB, hostC].map((h) => startNode(t, h, { qos: true, HUB_OPTIONS: optionsWith() })));
    const [a, b, c] = nodes as [LabNode, LabNode, LabNode];
    await allPeers(nodes);
    // Each side's browsers stay with their side: pages on A's host for A's and B's users, on C's host for C's.
    const left = new Pages(t, hostA);
    const right = new Pages(t, hostC);
    await Promise.all([left.ready(), right.ready()]);
    left.live([a, b]);
    right.live([c]);
    const leftUsers = ['a0', 'a1', 'b0', 'b1'];
    const rightUsers = ['c0', 'c1'];
    await Promise.all([left.open(leftUsers, [a, b, a, b]), right.open(rightUsers, [c])]);
    const users = [...leftUsers, ...rightUsers];

    // Sends on both sides, 10/s each, to users on both sides, from before the cut until after the heal.
    const sends: Send[] = [];
    const pending: Promise<void>[] = [];
    let phase: 'before' | 'partition' | 'after' = 'before';
    const during: Send[] = [];
    let stop = false;
    let seq = 0;
    const stream = async (senders: LabNode[]): Promise<void> => {
      for (let i = 0; !stop && i < 600; i++) {
        const send: Send = {
          seq: seq++,
          user: users[Math.floor(Math.random() * users.length)]!,
          via: senders[i % senders.length]!.nodeId,
          state: 'pending',
          at: Date.now(),
        };
        sends.push(send);
        if (phase === 'partition') during.push(send);
        pending.push(durable(senders[i % senders.length]!, send));
        await sleep(100);
      }
    };
    const streams = Promise.all([stream([a, b]), stream([c])]);
    await sleep(1000);

    phase = 'partition';
    const cutAt = Date.now();
    lan.partition(hostC);
    await Promise.all([
      peersAre(a, [b.nodeId], [c.nodeId], 'during the partition', 20_000),
      peersAre(b, [a.nodeId], [c.nodeId], 'during the partition', 20_000),
      peersAre(c, [], [a.nodeId, b.nodeId], 'during the partition', 20_000),
    ]);
    t.log(`partition noticed on every side after ${Date.now() - cutAt} ms`);
    await sleep(2000);
    lan.heal(hostC);
    const healAt = Date.now();
    await allPeers(nodes, 20_000);
    phase = 'after';
    await sleep(1000);
    stop = true;
    await streams;
    await Promise.all(pending);

    const resolved = sends.filter((s) => s.state === 'resolved');
    const sides = [
      { name: 'left', pages: left, users: leftUsers },
      { name: 'right', pages: right, users: rightUsers },
    ];
    // Delivered to the pages as they are (connected throughout, each to its side's node)?
    const stuck: Send[] = [];
    for (const side of sides) {
      const wanted = resolved.filter((s) => side.users.includes(s.user));
      try {
        await side.pages.delivered(wanted, `every resolved send delivered on the ${side.name}`, 30_000);
      } catch {
        const missing = tally(side.pages, wanted).lost;
        stuck.push(...missing);
        // Still stored somewhere, or gone? A page that comes back pulls what is pending for it.
        for (const user of new Set(missing.map((s) => s.user))) side.pages.proc.send({ cmd: 'reconnect', user });
        await side.pages.delivered(wanted, `the missing sends on the ${side.name} after a reconnect`, 30_000).catch(() => undefined);
      }
    }
    const l = tally(
      left,
      sends.filter((s) => leftUsers.includes(s.user)),
    );
    const r = tally(
      right,
      sends.filter((s) => rightUsers.includes(s.user)),
    );
    const lost = [...l.lost, ...r.lost];
    const duplicates = l.duplicates + r.duplicates;
    const duringResolved = during.filter((s) => s.state === 'resolved');
    t.log(
      `sent ${sends.length} (${during.length} during the partition: ${during.filter((s) => s.via === c.nodeId).length} on C's side), ` +
        `resolved ${resolved.length} (during the partition ${duringResolved.length}; copies ${histogram(duringResolved.map((s) => s.copies))}), ` +
        `delivered ${l.delivered + r.delivered}, lost ${lost.length}, duplicates ${duplicates}, misdelivered ${l.misdelivered + r.misdelivered}; ` +
        `not delivered to the connected page until it reconnected ${stuck.length}`,
    );
    const when = (s: Send): string =>
      `seq ${s.seq} to ${s.user} via ${s.via === c.nodeId ? 'C' : s.via === a.nodeId ? 'A' : 'B'}, sent ${s.at - cutAt} ms after the cut (heal at ${healAt - cutAt} ms)`;
    if (stuck.length > 0) t.log('not delivered until a reconnect:', stuck.map(when).join('; '));
    if (lost.length > 0) t.log('lost:', lost.map(when).join('; '));
    t.true(
      duringResolved.some((s) => s.via === c.nodeId) && duringResolved.some((s) => s.via !== c.nodeId),
      'sends resolved on both sides of the cut',
    );
    t.is(lost.length, 0, 'every message whose send resolved is delivered');
    // Also a send in the moment after the heal, made by a node that had not yet seen the page's
    // node back (stored, not forwarded, after that node had pulled from it): the sender tells it
    // to pull when it sees it up.
    t.is(stuck.length, 0, 'to the page connected throughout, without a reconnect');
    t.is(l.misdelivered + r.misdelivered, 0);
    t.true(duplicates <= during.length, `duplicates (${duplicates}) at most the sends made during the partition (${during.length})`);
  },
);

lanTest(
  'the returning node: its messages delivered and acknowledged through the others while it was down; restarted on its file, it drops them and redelivers none',
  async (t) => {
    t.timeout(180_000);
    const lan = await privateLan(t, 4);
    const hostC = lan.hosts[2]!;
    const nodes = await Promise.all(
      lan.hosts.slice(0, 3).map((h, i) => startNode(t, h, { qos: true, HUB_OPTIONS: optionsWith(), ...(i === 2 ? { NODE_ID: 'node-c' } : {}) })),
    );
    const [a, b, c] = nodes as [LabNode, LabNode, LabNode];
    await allPeers(nodes);
    // Users away: 30 messages for them through C, its own; each on a second node too.
    const users = Array.from({ length: 6 }, (_, i) => `r${i}`);
    const sends: Send[] = users.flatMap((user, u) =>
      Array.from({ length: 5 }, (_, j) => ({ seq: u * 5 + j, user, via: c.nodeId, state: 'pending' as const, at: 0 })),
    );
    await Promise.all(sends.map((s) => durable(c, s)));
    t.deepEqual(histogram(sends.map((s) => `${s.state} ${s.copies}`)), histogram(sends.map(() => 'resolved 2')), 'each committed on two nodes');

    c.proc.kill();
    await c.proc.exited();
    await Promise.all([peersAre(a, [b.nodeId], ['node-c'], 'after the kill', 20_000), peersAre(b, [a.nodeId], ['node-c'], 'after the kill', 20_000)]);
    const pages = new Pages(t, lan.hosts[3]!);
    await pages.ready();
    pages.live([a, b]);
    await pages.open(users, [a, b]);
    await pages.delivered(sends, 'every message of the node down delivered through the others', 60_000);
    const ids = new Set(sends.map((s) => s.messageId!));
    await pages.proc.waitFor(() => [...ids].every((id) => pages.acked().has(id)), 'every message acknowledged', 30_000);
    t.log(`${ids.size} messages of C delivered and acknowledged through A and B; duplicates ${tally(pages, sends).duplicates}`);

    // C comes back on its file, with its identity: it must learn what was acknowledged meanwhile before it serves anyone.
    const held = await Promise.all([a, b].map(async (n) => `${n.host.address} ${JSON.stringify(await stats(n))}`));
    const mark = pages.proc.messages.length;
    const back = await startNode(t, hostC, { qos: c.qosFile!, NODE_ID: 'node-c', HUB_OPTIONS: optionsWith() });
    await allPeers([a, b, back], 20_000);
    // At once (the balancer's health check puts C back), every page comes back to C itself,
    // then gets one new message through C: anything old would come first.
    pages.live([back]);
    pages.proc.send({ cmd: 'reconnect', node: web(back) });
    await pages.connected(users, mark);
    const markers: Send[] = users.map((user, i) => ({ seq: 1000 + i, user, via: back.nodeId, state: 'pending', at: 0 }));
    await Promise.all(markers.map((s) => durable(back, s)));
    await pages.delivered(markers, 'the new message on every page', 30_000);
    const again = pages.events(mark).filter((e) => ids.has(e.id));
    t.log(`after C's return: ${again.length} of its ${ids.size} acknowledged messages written again`);
    if (again.length > 0) {
      t.log('written again:', histogram(again.map((e) => `${e.user} at ${e.node}`)), '; before C returned:', held.join('; '));
      for (const [name, node] of [
        ['A', a],
        ['B', b],
        ['C', back],
      ] as const)
        t.log(`${name}: ${JSON.stringify(await stats(node))}`);
    }
    t.deepEqual(again, [], 'nothing acknowledged is delivered again');
    for (const node of [back, a, b])
      await until(
        () => node.proc.request({ cmd: 'pending' }),
        (m) => m.pending === 0,
        `${node.host.address}'s store to hold nothing pending`,
        30_000,
      );
  },
);

/** `hub.qos.replicationStats()` of a node. */
async function stats(node: LabNode): Promise<Record<string, number>> {
  return (await node.proc.request({ cmd: 'replication' })).stats as Record<string, number>;
}

lanTest(
  're-replication: a node gone longer than rereplicateAfterMs has its messages copied again, so that a second node lost later loses none of them',
  async (t) => {
    t.timeout(180_000);
    const lan = await privateLan(t, 4);
    const options = optionsWith({ ...REPLICATION, rereplicateAfterMs: 2000 });
    const nodes = await Promise.all(lan.hosts.slice(0, 3).map((h) => startNode(t, h, { qos: true, HUB_OPTIONS: options })));
    const [a, b, c] = nodes as [LabNode, LabNode, LabNode];
    await allPeers(nodes);
    // Users away: 30 messages through C, each also on A or B (the replica of its target).
    const users = Array.from({ length: 6 }, (_, i) => `x${i}`);
    const sends: Send[] = users.flatMap((user, u) =>
      Array.from({ length: 5 }, (_, j) => ({ seq: u * 5 + j, user, via: c.nodeId, state: 'pending' as const, at: 0 })),
    );
    await Promise.all(sends.map((s) => durable(c, s)));
    t.is(histogram(sends.map((s) => `${s.state} ${s.copies}`)), histogram(sends.map(() => 'resolved 2')), 'each committed on two nodes');
    const before = { a: (await stats(a)).held, b: (await stats(b)).held };
    t.log(`copies of C's messages held before the first loss: A ${before.a}, B ${before.b}`);

    // First loss: C and its disk. Each message now lives on one node only, until re-replication.
    c.proc.kill();
    await c.proc.exited();
    wipe(c.qosFile!);
    await Promise.all([
      peersAre(a, [b.nodeId], [c.nodeId], 'after the first loss', 20_000),
      peersAre(b, [a.nodeId], [c.nodeId], 'after the first loss', 20_000),
    ]);
    // rereplicateAfterMs later, the holders copy them to the other survivor: both hold all 30.
    for (const node of [a, b])
      await until(
        () => stats(node),
        (s) => s.held === sends.length,
        `${node.host.address} to hold a copy of each of C's ${sends.length} messages`,
        30_000,
      );
    t.log(`re-replicated: A ${(await stats(a)).rereplicated}, B ${(await stats(b)).rereplicated}`);

    // Second loss: B and its disk. A alone serves every message.
    b.proc.kill();
    await b.proc.exited();
    wipe(b.qosFile!);
    await peersAre(a, [], [b.nodeId, c.nodeId], 'after the second loss', 20_000);
    const pages = new Pages(t, lan.hosts[3]!);
    await pages.ready();
    pages.live([a]);
    await pages.open(users, [a]);
    try {
      await pages.delivered(sends, 'every message of C delivered by A', 30_000);
    } catch (err) {
      t.log(String(err).slice(0, 300));
    }
    const { delivered, lost } = tally(pages, sends);
    t.log(`after two losses: delivered ${delivered} of ${sends.length}, lost ${lost.length}`);
    t.is(lost.length, 0);
  },
);
