// Silent deaths: a browser or a cluster node that vanishes without FIN or RST (power loss, a
// pulled cable, a NAT or Wi-Fi drop). Each side runs in a network namespace of its own, joined
// by a bridge in another (test/helpers/netns.ts); `ip link set eth0 down` in one namespace cuts
// that host off without a single packet leaving it. Needs root (CI runs as root).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { NsProcess, netnsUnavailable, privateLan } from './helpers/netns.js';

const unavailable = netnsUnavailable();
const maybe = unavailable === undefined ? test.serial : test.skip;
if (unavailable !== undefined) console.log(`silent-death tests skipped: ${unavailable}`);

/** Cuts a host's only link without a packet leaving it: its peers see nothing at all. */
function cut(ns: string): void {
  execFileSync('ip', ['-n', ns, 'link', 'set', 'eth0', 'down']);
}

interface Event {
  event: string;
  at: number;
  [key: string]: unknown;
}

const isEvent =
  (name: string, fields: Record<string, unknown> = {}) =>
  (m: Record<string, unknown>): boolean =>
    m.event === name && Object.entries(fields).every(([k, v]) => m[k] === v);

let queries = 0;
async function query(node: NsProcess, name: string, args: unknown[]): Promise<{ value: unknown; partial: boolean; failed: string[] }> {
  const id = ++queries;
  node.send({ cmd: 'query', id, name, args });
  const answer = await node.waitFor((m) => m.answer === id, `the answer to ${name}`);
  return answer as unknown as { value: unknown; partial: boolean; failed: string[] };
}

// ---- a browser that vanished ---------------------------------------------------------------

const HEARTBEAT_MS = 1000;
const DEAD_STREAM_MS = 2000;
const LEAVE_DELAY_MS = 1500;

maybe(
  'a stream whose browser vanished without FIN is closed within a heartbeat + deadStreamTimeoutMs, and its user leaves isOnline, counts and presence',
  async (t) => {
    const { hosts } = await privateLan(t, 2);
    const [serverHost, browserHost] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    const server = new NsProcess(t, serverHost.ns, ['test/fixtures/netns-node.ts'], {
      HOST: serverHost.address,
      OPTIONS: JSON.stringify({
        heartbeatMs: HEARTBEAT_MS,
        deadStreamTimeoutMs: DEAD_STREAM_MS,
        reconnectTimeMs: 500,
        presence: { leaveDelayMs: LEAVE_DELAY_MS },
      }),
    });
    const { web } = await server.waitFor((m) => m.ready === true, 'the server to listen', 30_000);
    const browser = new NsProcess(t, browserHost.ns, ['test/fixtures/stream-client.ts'], {
      URL: `http://${serverHost.address}:${String(web)}/sse/test/connect?access-token=7&channels=room`,
    });
    await server.waitFor(isEvent('connect', { userId: '7' }), 'the stream to open', 30_000);
    await server.waitFor(isEvent('presence-join', { userId: '7' }), 'the user to join the channel');
    t.is((await query(server, 'isOnline', ['7'])).value, true);
    // A heartbeat has crossed the link (and was acknowledged): the stream is healthy before the cut.
    await browser.waitFor((m) => typeof m.bytes === 'number' && browser.messages.filter((x) => 'bytes' in x).length >= 2, 'a heartbeat', 10_000);

    const cutAt = Date.now();
    cut(browserHost.ns);
    // At most one heartbeat until bytes are outstanding, then the user timeout; the rest is slack
    // for a loaded machine (without the mechanism the kernel would wait ~15 min).
    const bound = HEARTBEAT_MS + DEAD_STREAM_MS + 3000;
    const gone = (await server.waitFor(isEvent('disconnect', { userId: '7' }), 'the server to close the dead stream', bound + 5000)) as Event;
    const detectedMs = gone.at - cutAt;
    t.log(`stream closed ${detectedMs} ms after the cut (heartbeat ${HEARTBEAT_MS} ms, deadStreamTimeoutMs ${DEAD_STREAM_MS} ms)`);
    t.true(detectedMs <= bound, `closed after ${detectedMs} ms, bound ${bound} ms`);
    t.is(gone.reason, 'client');

    t.is((await query(server, 'isOnline', ['7'])).value, false);
    t.is((await query(server, 'connectionCount', [])).value, 0);
    t.deepEqual((await query(server, 'userIds', [])).value, []);
    t.deepEqual((await query(server, 'presence', ['room'])).value, []);
    await server.waitFor(isEvent('presence-leave', { userId: '7', channel: 'room' }), 'the presence leave', LEAVE_DELAY_MS + 5000);
  },
);

// ---- a cluster node that vanished ----------------------------------------------------------

const CLUSTER_PORT = 4101;
const TIMEOUT_MS = 1000;
const HEALTH_MS = 1000;

/** A LAN cluster node in namespace `ns` at `address`, peer of `peer`; its users connect to it over its own loopback. */
function clusterNode(
  t: Parameters<typeof privateLan>[0],
  ns: string,
  address: string,
  peer: string,
  cluster: Record<string, unknown> = {},
): NsProcess {
  return new NsProcess(t, ns, ['test/fixtures/netns-node.ts'], {
    HOST: '127.0.0.1',
    OPTIONS: JSON.stringify({
      reconnectTimeMs: 500,
      presence: { leaveDelayMs: LEAVE_DELAY_MS },
      cluster: {
        host: address,
        port: CLUSTER_PORT,
        peers: [`${peer}:${CLUSTER_PORT}`],
        timeoutMs: TIMEOUT_MS,
        healthIntervalMs: HEALTH_MS,
        ...cluster,
      },
    }),
  });
}

maybe('a peer whose link is cut without FIN is down within 10 s, answers are partial meanwhile, and its users leave presence', async (t) => {
  const { hosts } = await privateLan(t, 2);
  const [hostA, hostB] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
  const a = clusterNode(t, hostA.ns, hostA.address, hostB.address);
  const b = clusterNode(t, hostB.ns, hostB.address, hostA.address);
  const readyA = await a.waitFor((m) => m.ready === true, 'node A to start', 30_000);
  const readyB = await b.waitFor((m) => m.ready === true, 'node B to start', 30_000);
  await a.waitFor(isEvent('peer-up', { nodeId: readyB.nodeId }), 'A to see B');
  await b.waitFor(isEvent('peer-up', { nodeId: readyA.nodeId }), 'B to see A');
  a.send({ cmd: 'stream', userId: 'a1', channel: 'room' });
  b.send({ cmd: 'stream', userId: 'b1', channel: 'room' });
  await a.waitFor(isEvent('presence-join', { userId: 'a1' }), 'a1 to join');
  await b.waitFor(isEvent('presence-join', { userId: 'b1' }), 'b1 to join');
  t.like(await query(a, 'isOnline', ['b1']), { value: true, partial: false });

  const cutAt = Date.now();
  cut(hostB.ns);
  // Before B is marked down, every call still asks it: it costs at most the timeout, and says partial.
  const asked = Date.now();
  const during = await query(a, 'isOnline', ['b1']);
  const askedMs = Date.now() - asked;
  t.like(during, { value: false, partial: true, failed: [readyB.nodeId] });
  t.true(askedMs <= TIMEOUT_MS + 1000, `a query took ${askedMs} ms with a timeout of ${TIMEOUT_MS} ms`);

  const down = (await a.waitFor(isEvent('peer-down', { nodeId: readyB.nodeId }), 'A to mark B down', 15_000)) as Event;
  const downMs = down.at - cutAt;
  t.log(`B marked down ${downMs} ms after the cut (healthIntervalMs ${HEALTH_MS}, timeoutMs ${TIMEOUT_MS})`);
  t.true(downMs <= 10_000, `down after ${downMs} ms`);
  // Down: B is not asked any more (no wait at all), and still missing from every answer.
  t.like(await query(a, 'isOnline', ['b1']), { value: false, partial: true, failed: [readyB.nodeId] });
  t.like(await query(a, 'presence', ['room']), { value: [['a1', 1]], partial: true });
  t.like(await query(a, 'connectionCount', []), { value: 1, partial: true });
  // B's user leaves presence on A, once the leave delay (a reconnect elsewhere would cancel it) has passed.
  const leave = (await a.waitFor(
    isEvent('presence-leave', { userId: 'b1', channel: 'room' }),
    "b1's presence leave",
    LEAVE_DELAY_MS + 5000,
  )) as Event;
  t.log(`b1's presence-leave ${leave.at - cutAt} ms after the cut (leaveDelayMs ${LEAVE_DELAY_MS})`);
  t.false(a.messages.some(isEvent('presence-leave', { userId: 'a1' })), "A's own user stays");
});
