// The LAN lab's silent deaths: a node, or a browser's host, whose link goes down without a
// FIN or RST. The others must notice within the bounds of issue 23: a peer is down within
// 10 s (every answer partial meanwhile) and its users leave presence; a stream whose browser
// vanished is closed within a heartbeat plus `deadStreamTimeoutMs`.
//
// The mechanisms are the detect branch's (merged): `deadStreamTimeoutMs` (TCP_USER_TIMEOUT
// on each stream) and the presence leave of a vanished peer's users. Before that merge both
// tests failed here: the stream stayed open (TCP's ~15 min), and nobody announced the
// vanished node's users' presence-leave. test/silent-death.test.ts shows the same with two
// hosts and static peers; these run on the lab's three mDNS nodes on defaults.
import test from 'ava';
import { NsProcess, privateLan } from '../helpers/netns.js';
import { allPeers, eventsOf, labUnavailable, openStream, peersAre, query, received, startNode, until, userIds } from './lab.js';

const unavailable = labUnavailable();
if (unavailable) console.log(`# lan-silent-death: skipped: ${unavailable}`);
const lanTest = unavailable ? test.skip : test.serial;

// The library's defaults, but for a shorter leave delay (presence.leaveDelayMs, default 10 s:
// it must exceed reconnectTimeMs, 5 s): the lab then waits 6 s, not 10 s, for the leave.
const LEAVE_DELAY_MS = 6000;
/** Default `cluster.timeoutMs`: the longest any call may wait for one peer. */
const TIMEOUT_MS = 1000;

lanTest(
  'B cut without FIN: A and C mark it down within 10 s, its users leave presence, calls stay bounded; durable messages for them arrive where they reconnect',
  async (t) => {
    const lan = await privateLan(t, 3);
    const hostB = lan.hosts[1]!;
    const options = JSON.stringify({ presence: { leaveDelayMs: LEAVE_DELAY_MS } });
    const [a, b, c] = await Promise.all(lan.hosts.map((h, i) => startNode(t, h, { HUB_OPTIONS: options, qos: i === 0 })));
    await allPeers([a!, b!, c!]);
    await openStream(a!, 'a1', 'room');
    await openStream(b!, 'b1', 'room');
    await until(
      () => query(a!, 'presence', ['room']),
      (p) => JSON.stringify(p.value) === '[["a1",1],["b1",1]]',
      'b1 in the room, seen from A',
    );

    const cutAt = Date.now();
    lan.linkDown(hostB);
    // Meanwhile no call waits longer than the configured timeout.
    const sendStarted = Date.now();
    t.is((await a!.proc.request({ cmd: 'send', users: ['a1', 'b1'], event: 'during', data: 1 })).sent, 1);
    const sendMs = Date.now() - sendStarted;
    t.true(sendMs < TIMEOUT_MS + 500, `a send during the cut took ${sendMs} ms`);
    await Promise.all([
      peersAre(a!, [c!.nodeId], [b!.nodeId], 'after the cut', 10_000 - (Date.now() - cutAt)),
      peersAre(c!, [a!.nodeId], [b!.nodeId], 'after the cut', 10_000 - (Date.now() - cutAt)),
    ]);
    const downMs = Date.now() - cutAt;
    t.log(`B marked down by A and C ${downMs} ms after its link went down`);
    t.true(downMs <= 10_000);
    const queryStarted = Date.now();
    t.deepEqual(await userIds(a!), { ids: ['a1'], partial: true }, 'B is known but down: its part is missing, and said so');
    t.true(Date.now() - queryStarted < TIMEOUT_MS + 500);

    // Its users leave presence: one presence-leave for b1, from A or C, after the leave delay.
    const leave = await Promise.race(
      [a!, c!].map((n) => n.proc.waitFor((m) => m.presenceLeave === 'b1', 'presence-leave of b1', 10_000 + LEAVE_DELAY_MS + 5_000)),
    );
    t.log(`b1 left presence ${Math.round(Number(leave.at) - cutAt)} ms after the cut`);
    t.deepEqual((await query(a!, 'presence', ['room'])).value, [['a1', 1]]);

    // A durable message for b1 waits in A's store, and arrives where b1 reconnects.
    await a!.proc.request({ cmd: 'durable', users: ['b1'], event: 'kept', data: 'for b1' });
    const again = await openStream(c!, 'b1');
    await received(c!, again, 'kept');
    t.deepEqual(
      eventsOf(c!, again, 'kept').map((e) => e.data),
      ['for b1'],
    );
  },
);

lanTest(
  'a browser host cut without FIN: its stream is closed within a heartbeat plus deadStreamTimeoutMs, and its user leaves presence',
  async (t) => {
    const lan = await privateLan(t, 3);
    const [hostA, hostC, browser] = lan.hosts as [(typeof lan.hosts)[0], (typeof lan.hosts)[0], (typeof lan.hosts)[0]];
    // A short heartbeat and dead-timeout keep the lab fast; the bound is the same formula.
    const HEARTBEAT_MS = 1000;
    const DEAD_MS = 3000;
    const options = JSON.stringify({ heartbeatMs: HEARTBEAT_MS, deadStreamTimeoutMs: DEAD_MS, presence: { leaveDelayMs: LEAVE_DELAY_MS } });
    const [a, c] = await Promise.all([hostA, hostC].map((h) => startNode(t, h, { HUB_OPTIONS: options })));
    await allPeers([a!, c!]);
    const page = new NsProcess(t, browser.ns, ['test/fixtures/lan-page.ts'], {
      URL: `http://${hostA.address}:8080/sse/lab/connect?access-token=d1&channel=room`,
    });
    await page.waitFor((m) => m.event === 'connect-finish', 'the page connected');
    await until(
      () => query(c!, 'isOnline', ['d1']),
      (q) => q.value === true,
      'd1 online, seen from C',
    );

    const cutAt = Date.now();
    lan.linkDown(browser);
    const bound = HEARTBEAT_MS + DEAD_MS;
    const closed = await a!.proc.waitFor((m) => m.disconnected === 'd1', 'the stream of the vanished browser closed', bound + 5_000);
    const closedMs = Math.round(Number(closed.at) - cutAt);
    t.log(`the stream closed ${closedMs} ms after the browser's link went down (heartbeat ${HEARTBEAT_MS} + dead timeout ${DEAD_MS})`);
    t.true(closedMs <= bound + 3_000, `closed after ${closedMs} ms`);
    for (const node of [a!, c!]) t.false((await query(node, 'isOnline', ['d1'])).value as boolean, `d1 offline on ${node.host.address}`);
    await a!.proc.waitFor((m) => m.presenceLeave === 'd1', 'presence-leave of d1', LEAVE_DELAY_MS + 3_000);
  },
);
