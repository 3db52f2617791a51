import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExampleApp } from '../example/app.js';
import { eventually } from './helpers/cluster.js';
import { listen } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

function nginxMissing(): string | undefined {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return "nginx is not installed (.ci/run installs Debian's nginx-light)";
  }
}
const missing = nginxMissing();
if (missing) console.log(`# nginx: skipped: ${missing}`);

(missing ? test.skip : test)('through nginx with the documented configuration, events arrive at once', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sse-nginx-data-'));
  const prefix = mkdtempSync(join(tmpdir(), 'sse-nginx-'));
  t.teardown(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(prefix, { recursive: true, force: true });
  });
  const { app, plugins } = createExampleApp({ dataDir, env: {} });
  app.proxy = true;
  t.teardown(async () => {
    await plugins.hr.close();
    await plugins.hunter.close();
  });
  const { origin } = await listen(t, app);
  // nginx takes over a socket that this test listens on, by the variable through which nginx
  // hands its sockets to a new binary on upgrade (NGINX="fd;"): the port is held throughout,
  // never guessed free and bound later.
  const socket = net.createServer();
  await new Promise<void>((resolve) => socket.listen(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address() as net.AddressInfo;
  // Node has no public accessor for a listening server's file descriptor.
  const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
  const conf = readFileSync('example/nginx.conf', 'utf8')
    .replaceAll('{{prefix}}', prefix)
    .replaceAll('{{upstream}}', new URL(origin).host)
    .replaceAll('{{listen}}', `127.0.0.1:${port}`);
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  // With a master process: nginx 1.22 crashes (SIGSEGV) on inherited sockets with `master_process off`.
  const nginx = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;'], {
    stdio: ['ignore', 'inherit', 'inherit', fd],
    env: { ...process.env, NGINX: '3;' },
  });
  const exited = once(nginx, 'exit');
  // SIGTERM, not SIGKILL: the master stops its worker on the way out.
  t.teardown(async () => {
    nginx.kill('SIGTERM');
    const timer = setTimeout(() => nginx.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  // nginx holds its copy now; connections wait in the socket's backlog until it accepts them.
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  await eventually(() => existsSync(join(prefix, 'nginx.pid')) || nginx.exitCode !== null, 'nginx started', 10_000);
  t.is(nginx.exitCode, null, 'nginx is running');

  const proxied = `http://127.0.0.1:${port}`;
  const stream = await RawStream.open(t, `${proxied}/sse/hr/connect?access-token=7`);
  t.is(stream.headers!.get('content-type'), 'text/event-stream; charset=utf-8');
  // The proxy passes the client's address on; with app.proxy the connection records it.
  t.is((await plugins.hr.hub.getConnectionById(stream.connectionId))?.ip, '127.0.0.1');
  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const sentAt = performance.now();
    t.is(await plugins.hr.hub.sendByUserId(7, 'bell', { i }), 1);
    await stream.next('bell');
    latencies.push(performance.now() - sentAt);
  }
  latencies.sort((a, b) => a - b);
  t.log(`latency through nginx: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
  // A buffering proxy would hold these small events back until its buffer fills.
  t.true(latencies[2]! < 100, `median ${latencies[2]} ms`);
  // Ordinary requests go through it too.
  const res = await fetch(`${proxied}/api/notify?access-token=admin`, { method: 'POST', body: JSON.stringify({ userId: 7, event: 'x', data: 1 }) });
  t.deepEqual(await res.json(), { count: 1 });
});
