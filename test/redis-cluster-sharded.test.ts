// The Redis cluster engine on a real Redis Cluster (three masters started by the test): the
// hash-tagged keys, the Lua beat and the pub/sub channels work across shards.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { eventually } from './helpers/cluster.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const { unavailable } = redisTest('redis-cluster-sharded.test.ts');
const serial = unavailable === undefined ? test.serial : test.skip;

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Three cluster-enabled redis-servers joined into one Redis Cluster (no replicas). */
async function redisCluster(t: ExecutionContext): Promise<RedisServer[]> {
  const servers: RedisServer[] = [];
  for (let i = 0; i < 3; i++) {
    // The cluster bus port defaults to port + 10000, which may be out of range: choose one.
    const busPort = await freePort();
    const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort)];
    servers.push(await RedisServer.start(t, { aof: false, args }));
  }
  const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
  await promisify(execFile)('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
  return servers;
}

function client(t: ExecutionContext, servers: RedisServer[]): Cluster {
  const cluster = new Cluster(
    servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    { enableOfflineQueue: false, redisOptions: { commandTimeout: 2000 } },
  );
  t.teardown(() => cluster.disconnect());
  return cluster;
}

serial('three nodes over a Redis Cluster: sends with counts, directory queries, a node leaving', async (t) => {
  const servers = await redisCluster(t);
  const source = client(t, servers);
  await eventually(async () => (await source.cluster('INFO').catch(() => '')).toString().includes('cluster_state:ok'), 'cluster ok', 10_000);
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    const n = await startPlugin(t, { cluster: { redis: source, timeoutMs: 2000, healthIntervalMs: 300 } });
    n.plugin.hub.on('peer-error', () => undefined);
    await n.plugin.hub.ready();
    nodes.push(n);
  }
  const [a, b, c] = nodes;
  for (const n of nodes) await eventually(() => n.plugin.hub.cluster!.peers().length === 2, 'peers', 10_000);
  const onB = await RawStream.open(t, `${b!.base}/connect?access-token=1@x&channel=news`);
  await RawStream.open(t, `${c!.base}/connect?access-token=2@y`);
  t.is(await a!.plugin.hub.sendAll('bell', 1), 2);
  await onB.next('bell');
  await eventually(async () => (await a!.plugin.hub.getConnectionCount()) === 2, 'directory written');
  t.deepEqual((await a!.plugin.hub.getUserIds()).sort(), ['1', '2']);
  t.deepEqual((await a!.plugin.hub.getTenantIds()).sort(), ['x', 'y']);
  t.true(await a!.plugin.hub.isOnline(2));
  t.is((await a!.plugin.hub.getConnections({ channel: 'news' })).length, 1);
  await c!.plugin.close();
  await eventually(async () => !(await a!.plugin.hub.isOnline(2)), 'C left');
  t.is(await a!.plugin.hub.sendAll('bell', 2), 1);
});
