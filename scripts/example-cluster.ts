// `npm run example:cluster`: three example nodes on loopback, joined by a static peer list.
// Web ports 3001-3003; internal cluster ports 4101/4103/4105 (hr) and the next port (hunter).
// Stops all three on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const secret = process.env.SSE_CLUSTER_SECRET ?? randomBytes(32).toString('base64');
const nodes = [
  { web: 3001, internal: 4101 },
  { web: 3002, internal: 4103 },
  { web: 3003, internal: 4105 },
];
const peers = nodes.map((n) => `127.0.0.1:${n.internal}`).join(',');
const children: ChildProcess[] = nodes.map((n, i) =>
  spawn(process.execPath, ['--import=tsx', 'example/server.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      PORT: String(n.web),
      HOST: '127.0.0.1',
      SSE_CLUSTER_SECRET: secret,
      SSE_DISCOVERY: 'static',
      SSE_PEERS: peers,
      SSE_NODE_HOST: '127.0.0.1',
      SSE_NODE_PORT: String(n.internal),
      SSE_DB: `./data/node${i + 1}-hr-qos.db`,
    },
  }),
);
children.forEach((child, i) => {
  child.stdout!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n').filter(Boolean)) console.log(`[node${i + 1}] ${line}`);
  });
});
console.log('Three nodes; open each in a browser, log in as different users, send from any node:');
for (const n of nodes) console.log(`  http://127.0.0.1:${n.web}/`);
const stop = (): void => {
  for (const c of children) c.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
await Promise.all(children.map((c) => new Promise((resolve) => c.once('exit', resolve))));
