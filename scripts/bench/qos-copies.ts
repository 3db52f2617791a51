// Durable throughput with copies (issue 29): committed durable sends per second on a cluster
// of 3 nodes (scripts/bench/cluster-node.ts, loopback), side by side in one run:
//   copies1  the LAN engine (static peers, a SQLite file per node), `qos.replication: { copies: 1 }`:
//            a message is committed in the file of the node that took it, as before issue 29
//   copies2  the same with `copies: 2`: also committed in a second node's file before the send resolves
//   redis    the Redis engine (`cluster: { redis }` + `qos: { redis }`, one redis-server of its
//            own, AOF everysec): one shared store
//   default  the LAN engine without the `replication` key (whatever the default is)
// All clusters stay up and warm; the rounds alternate between them, each going first in turn,
// so that this busy machine's drift hits them alike. Per round and cluster, each node makes
// `--sends` durable sends to users who are away (messages stay stored), `--concurrency` in
// flight per node. Reported per configuration: the median sends/s over the rounds and its ratio
// to copies1, and CPU per send (the three nodes' process.cpuUsage, and the redis-server's from
// /proc), which depends less on the machine's other load than the wall time.
//
//   npx tsx scripts/bench/qos-copies.ts [--configs copies1,copies2,redis] [--rounds 6] [--sends 2000] [--concurrency 100]
//
// Loopback only; bounded in count and time (the run stops by itself after 15 minutes).
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { INSTALL_HINT, redisCpuSeconds, redisServerInstalled, startRedisServer, type RedisProcess } from '../redis-process.js';
import type { Rpc } from './ipc.js';
import { opt } from './cli.js';
import { root, spawn, stop, stopAfter } from './procs.js';
import { environment } from './report.js';
import { median } from './stats.js';

const argv = process.argv.slice(2);
type Config = 'copies1' | 'copies2' | 'redis' | 'default';
const LABELS: Record<Config, string> = {
  copies1: 'LAN, `copies: 1` (owner only)',
  copies2: 'LAN, `copies: 2` (owner + one more node)',
  redis: 'Redis engine (one shared store, AOF everysec)',
  default: 'LAN, no `replication` key',
};
const CONFIGS = opt('configs', 'copies1,copies2,redis').split(',') as Config[];
for (const c of CONFIGS) if (!(c in LABELS)) throw new Error(`unknown config ${c}: ${Object.keys(LABELS).join(', ')}`);
if (CONFIGS.includes('redis') && !redisServerInstalled()) {
  console.error(`qos-copies: the redis config needs redis-server. On Debian or Ubuntu:\n  ${INSTALL_HINT}`);
  process.exit(1);
}
const ROUNDS = Number(opt('rounds', '6'));
const SENDS = Number(opt('sends', '2000'));
const CONCURRENCY = Number(opt('concurrency', '100'));
const USERS = 1000;
if (!(ROUNDS >= 1 && ROUNDS <= 20)) throw new Error('--rounds must be 1..20');
if (!(SENDS >= 1 && SENDS <= 20_000)) throw new Error('--sends must be 1..20000');
const LIMIT_MS = 15 * 60_000;
stopAfter(LIMIT_MS, `qos-copies: still running after ${LIMIT_MS / 60_000} min, stopping`);

interface Cluster {
  config: Config;
  nodes: Rpc[];
  redis?: RedisProcess;
  dir?: string;
}

interface Round {
  rate: number;
  /** µs of CPU per send: the three nodes together, and the redis-server. */
  nodeCpu: number;
  redisCpu: number;
  copies: Record<string, number>;
}

async function start(config: Config): Promise<Cluster> {
  const cluster: Cluster = { config, nodes: [] };
  let common: NodeJS.ProcessEnv;
  if (config === 'redis') {
    cluster.redis = await startRedisServer();
    common = { SSE_REDIS_URL: cluster.redis.url };
  } else {
    cluster.dir = mkdtempSync(join(tmpdir(), 'sse-copies-'));
    common = { SSE_CLUSTER_SECRET: randomBytes(32).toString('base64') };
    if (config !== 'default') common.SSE_QOS_COPIES = config === 'copies1' ? '1' : '2';
  }
  for (let i = 0; i < 3; i++) {
    const env = { ...process.env, ...common, ...(cluster.dir === undefined ? {} : { SSE_QOS_FILE: join(cluster.dir, `n${i}.db`) }) };
    cluster.nodes.push((await spawn('cluster-node.ts', [], [], `${config} node ${i}`, env)).rpc);
  }
  const addresses = await Promise.all(cluster.nodes.map((n) => n.call<{ internal?: string }>('address')));
  if (config !== 'redis') await Promise.all(cluster.nodes.map((n) => n.call('setPeers', { peers: addresses.map((a) => a.internal) })));
  for (const n of cluster.nodes) {
    const until = Date.now() + 20_000;
    while ((await n.call<number>('peers')) !== 2) {
      if (Date.now() > until) throw new Error(`${config}: the cluster did not form`);
      await sleep(100);
    }
  }
  return cluster;
}

const cpuOf = async (nodes: Rpc[]): Promise<number> =>
  (await Promise.all(nodes.map((n) => n.call<{ cpu: number }>('cpu')))).reduce((s, c) => s + c.cpu, 0);

let prefix = 0;
/** One round: every node of the cluster sends at once. */
async function round(cluster: Cluster): Promise<Round> {
  const p = `r${prefix++}u`;
  const cpu0 = await cpuOf(cluster.nodes);
  const redis0 = cluster.redis === undefined ? 0 : redisCpuSeconds(cluster.redis);
  const t0 = performance.now();
  const answers = await Promise.all(
    cluster.nodes.map((n) =>
      n.call<{ ms: number; copies: Record<string, number> }>(
        'durableLoop',
        { count: SENDS, concurrency: CONCURRENCY, users: USERS, prefix: p },
        300_000,
      ),
    ),
  );
  const ms = performance.now() - t0;
  const total = SENDS * cluster.nodes.length;
  const copies: Record<string, number> = {};
  for (const a of answers) for (const [k, v] of Object.entries(a.copies)) copies[k] = (copies[k] ?? 0) + v;
  return {
    rate: total / (ms / 1000),
    nodeCpu: ((await cpuOf(cluster.nodes)) - cpu0) / total,
    redisCpu: cluster.redis === undefined ? 0 : ((redisCpuSeconds(cluster.redis) - redis0) * 1e6) / total,
    copies,
  };
}

const started = Date.now();
const clusters: Cluster[] = [];
const results = new Map<Config, Round[]>(CONFIGS.map((c) => [c, []]));
try {
  for (const config of CONFIGS) clusters.push(await start(config));
  // A warm-up round each (JIT, SQLite page cache, connection pools), not counted.
  for (const c of clusters) await round(c);
  for (let r = 0; r < ROUNDS; r++) {
    // Each cluster goes first in turn.
    const order = clusters.map((_, i) => clusters[(i + r) % clusters.length]!);
    for (const c of order) {
      const result = await round(c);
      results.get(c.config)!.push(result);
      console.error(
        `  round ${r + 1} ${c.config}: ${Math.round(result.rate).toLocaleString('en')} sends/s, ${result.nodeCpu.toFixed(0)} µs CPU/send (nodes)` +
          `${c.redis === undefined ? '' : ` + ${result.redisCpu.toFixed(0)} µs (redis-server)`}, copies ${JSON.stringify(result.copies)}`,
      );
    }
  }
} finally {
  for (const c of clusters) {
    for (const n of c.nodes) await stop(n);
    await c.redis?.stop();
    if (c.dir !== undefined) rmSync(c.dir, { recursive: true, force: true });
  }
}

const int = (v: number): string => Math.round(v).toLocaleString('en');
const base = median(results.get(CONFIGS[0]!)!.map((r) => r.rate));
const baseCpu = median(results.get(CONFIGS[0]!)!.map((r) => r.nodeCpu + r.redisCpu));
const lines = [
  `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`npx tsx scripts/bench/qos-copies.ts${argv.length > 0 ? ` ${argv.join(' ')}` : ''}\` ` +
    `(${((Date.now() - started) / 1000).toFixed(0)} s) on ${environment(root)}.`,
  '',
  `3 nodes on loopback, each making ${int(SENDS)} durable sends per round to ${int(USERS)} users who are away, ${CONCURRENCY} in flight per node; ` +
    `${ROUNDS} rounds, the configurations alternating (each first in turn), medians; ratios against ${LABELS[CONFIGS[0]!]}.`,
  '',
  '| configuration | durable sends/s (cluster) | ratio | CPU per send: nodes + redis-server | ratio | copies reported |',
  '|---|---:|---:|---:|---:|---|',
];
for (const config of CONFIGS) {
  const rs = results.get(config)!;
  const rate = median(rs.map((r) => r.rate));
  const node = median(rs.map((r) => r.nodeCpu));
  const redis = median(rs.map((r) => r.redisCpu));
  const copies: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.copies)) copies[k] = (copies[k] ?? 0) + v;
  lines.push(
    `| ${LABELS[config]} | ${int(rate)} | ${(rate / base).toFixed(2)} | ${node.toFixed(0)} µs${config === 'redis' ? ` + ${redis.toFixed(0)} µs` : ''} | ` +
      `${(median(rs.map((r) => r.nodeCpu + r.redisCpu)) / baseCpu).toFixed(2)} | ${Object.entries(copies)
        .map(([k, v]) => `${k}: ${int(v)}`)
        .join(', ')} |`,
  );
}
console.log(lines.join('\n'));
process.exit(0);
