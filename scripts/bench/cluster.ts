// Cluster benchmark: three nodes on loopback (separate processes, static peers).
//   1. cross-node send latency: node A sends to a user on node C at 1,000 sends/s;
//      p50 / p99 from the send timestamp to the client's receipt.
//   2. broadcast throughput: the same N clients on one node vs spread over three nodes,
//      K broadcasts from node A; deliveries/s, and the ratio.
// Loopback only; bounded; stops by itself.  npx tsx scripts/bench/cluster.ts [--quick]
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { Rpc } from './ipc.js';
import { StampedSseClients } from './stamped-sse-clients.js';
import { nowUs } from './stats.js';

const quick = process.argv.includes('--quick');
const RATE = 1000;
const SECONDS = quick ? 3 : 10;
const CLIENTS = quick ? 300 : 900;
const BROADCASTS = quick ? 50 : 200;

interface Node {
  rpc: Rpc;
  web: number;
}

/** Starts the nodes on random ports, then gives each the others' internal addresses. */
async function startNodes(count: number): Promise<Node[]> {
  const secret = randomBytes(32).toString('base64');
  const rpcs = Array.from({ length: count }, (_, i) => {
    const child = fork('scripts/bench/cluster-node.ts', [], {
      execArgv: ['--import=tsx'],
      env: { ...process.env, SSE_CLUSTER_SECRET: secret },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Rpc(child, `node${i + 1}`);
  });
  // Answered once the node listens (IPC messages wait for the child's handler).
  const addresses = await Promise.all(rpcs.map((rpc) => rpc.call<{ web: number; internal: string }>('address')));
  const peers = addresses.map((a) => a.internal);
  await Promise.all(rpcs.map((rpc) => rpc.call('setPeers', { peers })));
  const nodes = rpcs.map((rpc, i) => ({ rpc, web: addresses[i]!.web }));
  for (const n of nodes) {
    const deadline = Date.now() + 20_000;
    while ((await n.rpc.call<number>('peers').catch(() => -1)) !== count - 1) {
      if (Date.now() > deadline) throw new Error('cluster did not form');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return nodes;
}

async function waitFor(clients: StampedSseClients, expected: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (clients.received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

async function latency(nodes: Node[]): Promise<{ p50: number; p99: number; sent: number; received: number }> {
  const clients = new StampedSseClients();
  await clients.open(nodes[2]!.web, 'target');
  const { sent } = await nodes[0]!.rpc.call<{ sent: number }>('pace', { user: 'target', rate: RATE, seconds: SECONDS }, (SECONDS + 30) * 1000);
  await waitFor(clients, sent, 5000);
  clients.close();
  return { p50: clients.hist.percentile(50) / 1000, p99: clients.hist.percentile(99) / 1000, sent, received: clients.received };
}

async function broadcast(nodes: Node[], spread: boolean): Promise<{ perSecond: number; delivered: number }> {
  const clients = new StampedSseClients();
  for (let i = 0; i < CLIENTS; i++) await clients.open(nodes[spread ? i % nodes.length : 0]!.web, `u${i}`);
  const started = nowUs();
  await nodes[0]!.rpc.call('burst', { count: BROADCASTS }, 120_000);
  await waitFor(clients, CLIENTS * BROADCASTS, 60_000);
  const seconds = (clients.lastAt - started) / 1e6;
  clients.close();
  return { perSecond: clients.received / seconds, delivered: clients.received };
}

const nodes = await startNodes(3);
try {
  const lat = await latency(nodes);
  const one = await broadcast(nodes, false);
  const three = await broadcast(nodes, true);
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
  console.log(`# cluster benchmark, ${new Date().toISOString()}, ${machine}${quick ? ' (quick)' : ''}`);
  console.log('| measure | result | target |');
  console.log('|---|---|---|');
  console.log(`| cross-node send latency at ${RATE}/s for ${SECONDS} s (A -> user on C), p50 | ${lat.p50.toFixed(2)} ms | — |`);
  console.log(`| same, p99 (${lat.received}/${lat.sent} received) | ${lat.p99.toFixed(2)} ms | < 10 ms |`);
  console.log(
    `| broadcast, ${CLIENTS} clients on one node, ${BROADCASTS} sendAll from it | ${Math.round(one.perSecond).toLocaleString('en')} deliveries/s | — |`,
  );
  console.log(
    `| broadcast, ${CLIENTS} clients over three nodes, ${BROADCASTS} sendAll from node A | ${Math.round(three.perSecond).toLocaleString('en')} deliveries/s (${(three.perSecond / one.perSecond).toFixed(2)}x one node) | — |`,
  );
} finally {
  await Promise.all(nodes.map((n) => n.rpc.call('stop').catch(() => undefined)));
  for (const n of nodes) n.rpc.child.kill();
}
