// `npm run example:redis`: a redis-server of its own (loopback, free port, temp directory),
// then three example nodes on loopback (web ports 3001-3003) joined through it: the cluster
// and the durable queues live in Redis (SSE_REDIS_URL), no peer list, no secret.
// Ctrl-C stops the nodes, then Redis, and removes the temp directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { INSTALL_HINT, redisServerInstalled, startRedisServer } from './redis-process.js';

if (!redisServerInstalled()) {
  console.error(`redis-server is not installed. On Debian or Ubuntu:\n  ${INSTALL_HINT}`);
  process.exit(1);
}
const redis = await startRedisServer();
console.log(`redis-server on ${redis.url} (data in ${redis.dir})`);

const webPorts = [3001, 3002, 3003];
const children: ChildProcess[] = webPorts.map((web) =>
  spawn(process.execPath, ['--import=tsx', 'example/server.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PORT: String(web), HOST: '127.0.0.1', SSE_REDIS_URL: redis.url, SSE_DATA_DIR: redis.dir },
  }),
);
children.forEach((child, i) => {
  child.stdout!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n').filter(Boolean)) console.log(`[node${i + 1}] ${line}`);
  });
});
console.log('Three nodes over one Redis; open each in a browser, log in as different users, send from any node:');
for (const web of webPorts) console.log(`  http://127.0.0.1:${web}/`);

const stop = (): void => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const codes = await Promise.all(children.map((c) => new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)))));
// The nodes are gone (Ctrl-C, or each failed): Redis last, so that they could close cleanly.
await redis.stop();
process.exit(codes.every((c) => c === 0) ? 0 : 1);
