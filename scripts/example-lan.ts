// `npm run example:lan` (as root): the example server on two hosts of a private LAN, with the
// cluster's default options: `SSE_CLUSTER_SECRET` and `SSE_DISCOVERY=mdns`, nothing else.
// Each host is a network namespace with its own address (192.0.2.1, 192.0.2.2) on a bridge
// in a namespace of its own; nothing of this machine's network is attached, so the nodes
// find each other by mDNS across that bridge only. Ctrl-C stops both nodes and deletes the
// namespaces.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Lan } from '../test/helpers/lan.js';

if (process.getuid?.() !== 0) {
  console.error('example:lan creates network namespaces: run it as root');
  process.exit(1);
}

const WEB_PORT = 3000;
const secret = process.env.SSE_CLUSTER_SECRET ?? randomBytes(32).toString('base64');
const lan = await Lan.create(2);
const dataDirs: string[] = [];
const children: ChildProcess[] = lan.hosts.map((host, i) => {
  const dataDir = mkdtempSync(join(tmpdir(), `sse-example-lan-${i + 1}-`));
  dataDirs.push(dataDir);
  const child = spawn('ip', ['netns', 'exec', host.ns, process.execPath, '--import=tsx', 'example/server.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PORT: String(WEB_PORT), HOST: '0.0.0.0', SSE_CLUSTER_SECRET: secret, SSE_DISCOVERY: 'mdns', SSE_DATA_DIR: dataDir },
  });
  createInterface({ input: child.stdout! }).on('line', (line) => console.log(`[node${i + 1} ${host.address}] ${line}`));
  return child;
});
console.log(`Two hosts on a private LAN: ${lan.hosts.map((h) => `${h.address} (namespace ${h.ns})`).join(', ')}.`);
console.log('They find each other by mDNS; watch for "peer up". To send from node 1 to user 7 on any node:');
console.log(
  `  ip netns exec ${lan.hosts[0]!.ns} curl -s -X POST -H 'content-type: application/json' ` +
    `-d '{"userId":7,"event":"bell","data":"hi"}' 'http://${lan.hosts[0]!.address}:${WEB_PORT}/api/notify?access-token=admin'`,
);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once('exit', resolve)))));
lan.destroy();
for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
console.log('stopped; namespaces deleted');
