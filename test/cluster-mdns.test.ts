import test from 'ava';
import { randomBytes } from 'node:crypto';
import { SECRET } from './helpers/cluster.js';
import { netnsUnavailable, NsProcess, privateLan } from './helpers/netns.js';

// mDNS runs only inside namespaces this test creates: joining the multicast group in the
// root namespace would send packets out of the machine.
const unavailable = netnsUnavailable();
if (unavailable) console.log(`# cluster-mdns: skipped: ${unavailable}`);
const nsTest = unavailable ? test.skip : test.serial;

nsTest('three nodes on a private LAN find each other by mDNS; a send on one reaches a user on another; goodbye on exit', async (t) => {
  const { hosts } = await privateLan(t, 4);
  const nodes = hosts.slice(0, 3).map((h) => new NsProcess(t, h.ns, ['test/fixtures/cluster-node.ts'], { NODE_HOST: h.address, SECRET }));
  // A rogue on the same LAN announces itself in the group without knowing the secret.
  const rogue = new NsProcess(t, hosts[3]!.ns, ['test/fixtures/cluster-node.ts'], { NODE_HOST: hosts[3]!.address, MODE: 'rogue' });
  const ids: string[] = [];
  for (const n of nodes) ids.push(String((await n.waitFor((m) => m.ready === true, 'ready')).nodeId));
  await rogue.waitFor((m) => m.ready === true, 'rogue ready');
  for (const [i, n] of nodes.entries()) {
    const others = ids.filter((_, j) => j !== i).sort();
    await n.waitFor((m) => JSON.stringify(m.peers) === JSON.stringify(others), `node ${i} sees the two others`);
  }
  // The rogue was probed (it is on the LAN and announced), yet never became a peer.
  await rogue.waitFor((m) => typeof m.rogueReceived === 'string', 'rogue probed');

  nodes[2]!.send({ cmd: 'open', user: '7' });
  await nodes[2]!.waitFor((m) => m.received === 'connect-finish', 'stream open on node 3');
  const text = `interview-at-${randomBytes(6).toString('hex')}`;
  nodes[0]!.send({ cmd: 'send', user: '7', event: 'bell', data: text });
  t.is((await nodes[0]!.waitFor((m) => 'sent' in m, 'sent')).sent, 1);
  const got = await nodes[2]!.waitFor((m) => m.received === 'bell', 'bell on node 3');
  t.is(got.data, text);
  t.false(JSON.stringify(rogue.messages).includes(text), 'the rogue received no payload');
  for (const n of nodes) t.false(n.messages.some((m) => Array.isArray(m.peers) && (m.peers as string[]).includes('rogue')));

  // Goodbye: node 2 leaves; the others drop it at once, well before the 3 s TTL would.
  const leftAt = Date.now();
  nodes[1]!.send({ cmd: 'exit' });
  await nodes[1]!.exited();
  await nodes[0]!.waitFor((m) => JSON.stringify(m.peers) === JSON.stringify([ids[2]].sort()), 'node 1 drops node 2', 5000);
  t.log(`peer dropped ${Date.now() - leftAt} ms after exit`);
});
