// The recovery window on a LAN cluster of three real processes over loopback (HTTP transport,
// static peers), under a steady stream of ordinary sends from every node (to a user, a tenant,
// a channel and all): pages behind a round-robin "load balancer" (ResumingPage, which behaves
// as the browser client does: recover=, de-duplication by id) through a rolling restart and
// through a node SIGKILLed. Counts: sent, seen, duplicates shown (0), missed (0); in the rolling
// restart every resume is recovered (each node hands its window to the others as it closes).
import test, { type ExecutionContext } from 'ava';
import { freePort } from './helpers/redis-server.js';
import { SECRET, eventually } from './helpers/cluster.js';
import { killOne, rollingRestart, startNode, type WindowCluster, type WindowNode } from './helpers/window-cluster.js';

async function lanCluster(t: ExecutionContext): Promise<WindowCluster> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ports.map((p) => `127.0.0.1:${p}`).join(',');
  const env = (i: number): Record<string, string> => ({ SECRET, CLUSTER_PORT: String(ports[i]), PEERS: peers });
  const nodes = await Promise.all([0, 1, 2].map((i) => startNode(t, `n${i}`, env(i))));
  await eventually(() => nodes.every((n) => n.peers === 2), 'three nodes that see each other', 15_000);
  for (const n of nodes) n.up = true;
  const restart = async (i: number): Promise<WindowNode> => {
    const node = await startNode(t, `n${i}`, env(i));
    await eventually(() => node.peers === 2, `n${i} back among its peers`, 15_000);
    nodes[i] = node;
    node.up = true;
    return node;
  };
  return { nodes, restart };
}

test.serial('a rolling restart of a three-node LAN cluster under 100 sends/s: every event once on every page, in order per sender', async (t) => {
  t.timeout(120_000);
  const pages = await rollingRestart(t, await lanCluster(t));
  // Each node that closed handed its window to the others first, so every resume is told it
  // has everything: the sends that failed against a node after its handoff (before the others
  // noticed it gone) reached no stream, and a peer that timed out (a node just started, slow)
  // says it wrote the send late. Every event arrives once (rollingRestart).
  const resumed = pages.flatMap((p) => p.finishes.filter((f) => f.resumed));
  t.true(resumed.length > 0, 'pages resumed on other nodes');
  t.is(resumed.filter((f) => f.recovered).length, resumed.length, 'every resume recovered');
});

test.serial('a node SIGKILLed: its pages come back on the others and get everything the surviving nodes sent', async (t) => {
  t.timeout(120_000);
  await killOne(t, await lanCluster(t), false);
});
