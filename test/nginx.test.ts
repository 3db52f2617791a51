import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExampleApp } from '../example/app.js';
import { eventually, freePort } from './helpers/cluster.js';
import { listen } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

function nginxMissing(): string | undefined {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'nginx is not installed (.ci/run installs Debian\'s nginx-light)';
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
  const port = await freePort();
  const conf = readFileSync('example/nginx.conf', 'utf8')
    .replaceAll('{{prefix}}', prefix)
    .replaceAll('{{upstream}}', new URL(origin).host)
    .replaceAll('{{listen}}', `127.0.0.1:${port}`);
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  const nginx = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off; master_process off;'], { stdio: ['ignore', 'inherit', 'inherit'] });
  t.teardown(() => {
    nginx.kill('SIGKILL');
  });
  await eventually(() => new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    }).on('error', () => resolve(false));
  }), 'nginx listening', 10_000);

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
