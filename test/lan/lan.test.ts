// The LAN lab: every node a separate host (its own network namespace and address on a
// private bridge), started with the library's defaults (`cluster: { secret, discovery:
// 'mdns' }`: no host, no mDNS tuning), finding the others by mDNS. Needs root; under CI a
// skip is a failure (scripts/test.mjs). Timings: the defaults (health check every 1 s, a
// peer down after two failed checks, 1 s per call, mDNS every 5 s with a 30 s TTL).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { NsProcess, privateLan } from '../helpers/netns.js';
import { allPeers, eventsOf, labUnavailable, openStream, peersAre, received, relayUnavailable, startNode, until, userIds } from './lab.js';

const unavailable = labUnavailable();
if (unavailable) console.log(`# lan: skipped: ${unavailable}`);
const lanTest = unavailable ? test.skip : test.serial;
const noRelay = unavailable ?? relayUnavailable();
if (noRelay && !unavailable) console.log(`# lan: slow-link test skipped: ${noRelay}`);
const relayTest = noRelay ? test.skip : test.serial;

lanTest(
  'three hosts on defaults announce their LAN address and find each other; a send through A reaches B and C exactly; users.json on C lists B',
  async (t) => {
    const lan = await privateLan(t, 4);
    const [a, b, c] = await Promise.all(lan.hosts.slice(0, 3).map((h) => startNode(t, h)));
    for (const node of [a, b, c]) t.is(node!.address.host, node!.host.address, 'the default route interface is announced, not loopback');
    // Another release of this package on the same LAN, in the same group: refused, and said.
    const other = new NsProcess(t, lan.hosts[3]!.ns, ['test/fixtures/mdns-announcer.ts'], {
      NODE_HOST: lan.hosts[3]!.address,
      GROUP: 'lab',
      VERSION: '3',
    });
    await other.waitFor((m) => m.ready === true, 'the announcer');
    await allPeers([a!, b!, c!]);

    const b1 = [await openStream(b!, 'b1'), await openStream(b!, 'b1')];
    const b2 = await openStream(b!, 'b2');
    const c1 = await openStream(c!, 'c1');
    const text = `bell-${randomBytes(4).toString('hex')}`;
    const sent = await a!.proc.request({ cmd: 'send', users: ['b1', 'b2', 'c1', 'nobody'], event: 'bell', data: text });
    t.is(sent.sent, 4, 'two streams of b1, one of b2, one of c1');
    // A marker after the bell: once it arrived everywhere, no second bell can be under way.
    t.is((await a!.proc.request({ cmd: 'send', users: ['b1', 'b2', 'c1'], event: 'marker', data: 1 })).sent, 4);
    for (const [node, stream] of [
      [b!, b1[0]!],
      [b!, b1[1]!],
      [b!, b2],
      [c!, c1],
    ] as const) {
      await received(node, stream, 'marker');
      t.deepEqual(
        eventsOf(node, stream, 'bell').map((e) => e.data),
        [text],
      );
    }

    const users = (await c!.proc.request({ cmd: 'users' })).body as { data: { list: { id: string }[]; partial: boolean } };
    t.deepEqual(users.data.list.map((u) => u.id).sort(), ['b1', 'b2', 'c1']);
    t.false(users.data.partial);

    for (const node of [a!, b!, c!]) {
      await node.proc.waitFor((m) => m.error === 'ERR_SSE_PEER_PROTOCOL', `${node.host.address} refusing the other release`);
      const errors = node.proc.messages.filter((m) => m.error !== undefined);
      t.deepEqual(
        errors.map((e) => e.error),
        ['ERR_SSE_PEER_PROTOCOL'],
        'one report for the other release, none about the address',
      );
      t.regex(String(errors[0]!.message), /other-release at 192\.0\.2\.4:9 announces cluster protocol 3, this node speaks 2/);
    }
  },
);

lanTest(
  'a partition {A, B} | {C}: both sides serve their own users; after the heal the answers converge and no durable message is lost',
  async (t) => {
    const lan = await privateLan(t, 3);
    const [hostA, hostB, hostC] = lan.hosts as [(typeof lan.hosts)[0], (typeof lan.hosts)[0], (typeof lan.hosts)[0]];
    const [a, b, c] = await Promise.all([hostA, hostB, hostC].map((h) => startNode(t, h, { qos: true })));
    await allPeers([a!, b!, c!]);
    const a1 = await openStream(a!, 'a1');
    const b1 = await openStream(b!, 'b1');
    const c1 = await openStream(c!, 'c1');

    const cutAt = Date.now();
    lan.partition(hostC);
    await Promise.all([
      peersAre(a!, [b!.nodeId], [c!.nodeId], 'during the partition'),
      peersAre(b!, [a!.nodeId], [c!.nodeId], 'during the partition'),
      peersAre(c!, [], [a!.nodeId, b!.nodeId], 'during the partition'),
    ]);
    t.log(`partition noticed on every side after ${Date.now() - cutAt} ms`);

    // Each side serves its own users, and says its answers are partial.
    t.is((await a!.proc.request({ cmd: 'send', users: ['a1', 'b1', 'c1'], event: 'left', data: 'A' })).sent, 2);
    t.is((await c!.proc.request({ cmd: 'send', users: ['a1', 'b1', 'c1'], event: 'right', data: 'C' })).sent, 1);
    await Promise.all([received(a!, a1, 'left'), received(b!, b1, 'left'), received(c!, c1, 'right')]);
    t.deepEqual(await userIds(a!), { ids: ['a1', 'b1'], partial: true });
    t.deepEqual(await userIds(c!), { ids: ['c1'], partial: true });
    // Durable messages across the cut wait in their sender's store.
    await a!.proc.request({ cmd: 'durable', users: ['c1'], event: 'kept', data: 'from A' });
    await c!.proc.request({ cmd: 'durable', users: ['a1', 'b1'], event: 'kept', data: 'from C' });

    const healedAt = Date.now();
    lan.heal(hostC);
    for (const node of [a!, b!, c!]) {
      await until(
        () => userIds(node),
        (u) => !u.partial && JSON.stringify(u.ids) === '["a1","b1","c1"]',
        `${node.host.address} to answer for the whole cluster again`,
        15_000,
      );
    }
    const converged = Date.now() - healedAt;
    t.log(`answers converged ${converged} ms after the heal`);
    t.true(converged < 10_000, `converged in ${converged} ms`);
    await Promise.all([received(c!, c1, 'kept'), received(a!, a1, 'kept'), received(b!, b1, 'kept')]);
    t.deepEqual(
      eventsOf(c!, c1, 'kept').map((e) => e.data),
      ['from A'],
    );
    t.deepEqual(
      eventsOf(a!, a1, 'kept').map((e) => e.data),
      ['from C'],
    );
    t.deepEqual(
      eventsOf(b!, b1, 'kept').map((e) => e.data),
      ['from C'],
    );
    t.is((await a!.proc.request({ cmd: 'send', users: ['a1', 'b1', 'c1'], event: 'whole', data: 1 })).sent, 3);
  },
);

const SLOW = { delayMs: 50, lossPercent: 2 };
const SENDS = 150;

// The one option changed from the defaults: on this link a call may take longer than the
// default 1 s (a lost SYN alone is retried after 1 s; two losses of one segment in a row take
// ~1 s), and then a send is reported failed, not delivered late. With the default, about one
// run of this test in seven lost one of its 150 sends that way (see BENCHMARKS.md).
const SLOW_LINK_OPTIONS = JSON.stringify({ cluster: { timeoutMs: 3000 } });

relayTest(
  `a slow lossy link (${SLOW.delayMs} ms each way, ${SLOW.lossPercent} % loss each way) on C: sends from A still reach C; p99 measured`,
  async (t) => {
    const lan = await privateLan(t, 3, { 2: SLOW });
    const [a, b, c] = await Promise.all(lan.hosts.map((h) => startNode(t, h, { HUB_OPTIONS: SLOW_LINK_OPTIONS })));
    await allPeers([a!, b!, c!], 30_000);
    const c1 = await openStream(c!, 'c1');
    // Three senders in turn, each waiting for its answer: three connections of A's pool, reused.
    const counts: number[] = [];
    const at = new Map<number, number>();
    let next = 0;
    await Promise.all(
      [0, 1, 2].map(async () => {
        while (next < SENDS) {
          const i = next++;
          at.set(i, performance.timeOrigin + performance.now());
          counts.push(Number((await a!.proc.request({ cmd: 'send', users: ['c1'], event: 'tick', data: i }, 15_000)).sent));
        }
      }),
    );
    const failed = counts.filter((n) => n !== 1).length;
    if (failed > 0)
      t.log(
        `${failed} sends reported ${JSON.stringify(counts.filter((n) => n !== 1))}; peer errors on A: ${JSON.stringify(a!.proc.messages.filter((m) => m.peerError !== undefined)).slice(0, 800)}`,
      );
    await received(c!, c1, 'tick', SENDS - failed, 20_000);
    const ticks = eventsOf(c!, c1, 'tick');
    t.deepEqual(
      ticks.map((e) => Number(e.data)).sort((x, y) => x - y),
      Array.from({ length: SENDS }, (_, i) => i),
      'every send arrived, once',
    );
    t.deepEqual(counts, Array<number>(SENDS).fill(1), 'and each reported 1');
    const latencies = ticks.map((e) => Number(e.at) - at.get(Number(e.data))!).sort((x, y) => x - y);
    const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
    t.log(
      `send A -> C over the slow link: p50 ${pct(50).toFixed(0)} ms, p99 ${pct(99).toFixed(0)} ms, max ${pct(100).toFixed(0)} ms (${SENDS} sends)`,
    );
  },
);

lanTest('a node restarted at a new address (same node id) is one peer, and once it leaves nothing of it is left', async (t) => {
  const lan = await privateLan(t, 3);
  const hostB = lan.hosts[1]!;
  const [a, b, c] = await Promise.all(lan.hosts.map((h, i) => startNode(t, h, i === 1 ? { NODE_ID: 'node-b' } : {})));
  await allPeers([a!, b!, c!]);

  // A power cut (no goodbye, no clean close), noticed; then a new DHCP lease: another address.
  b!.proc.kill();
  await b!.proc.exited();
  lan.linkDown(hostB);
  await Promise.all([peersAre(a!, [c!.nodeId], ['node-b'], 'after the power cut'), peersAre(c!, [a!.nodeId], ['node-b'], 'after the power cut')]);
  lan.readdress(hostB, '192.0.2.12');
  const b2 = await startNode(t, hostB, { NODE_ID: 'node-b' });
  t.is(b2.address.host, '192.0.2.12');
  await allPeers([a!, b2, c!], 20_000);
  await openStream(b2, 'b1');
  for (const node of [a!, c!]) {
    await until(
      () => userIds(node),
      (u) => !u.partial && u.ids.includes('b1'),
      `${node.host.address} to list b1`,
    );
  }

  // It leaves for good (goodbye): the old address must not linger as an unreachable node.
  b2.proc.send({ cmd: 'exit' });
  await b2.proc.exited();
  await Promise.all([peersAre(a!, [c!.nodeId], [], 'after node-b left'), peersAre(c!, [a!.nodeId], [], 'after node-b left')]);
  t.deepEqual(await userIds(a!), { ids: [], partial: false });
});

lanTest('a host with only loopback: the node announces 127.0.0.1, says once what to set, and nodes on that host still find each other', async (t) => {
  const ns = `sse-lan-lo-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns]));
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  const host = { ns, address: '127.0.0.1', port: '' };
  // Two nodes on the one host: two web ports.
  const a = await startNode(t, host, { WEB_PORT: '8080' });
  const b = await startNode(t, host, { WEB_PORT: '8081' });
  for (const node of [a, b]) {
    t.is(node.address.host, '127.0.0.1');
    await node.proc.waitFor((m) => m.error === 'ERR_SSE_NODE_ADDRESS', 'the address report');
  }
  await allPeers([a, b]);
  for (const node of [a, b]) {
    const reports = node.proc.messages.filter((m) => m.error !== undefined);
    t.is(reports.length, 1, 'said once');
    t.regex(String(reports[0]!.message), /no network interface but loopback.*cluster\.interface/);
  }
});
