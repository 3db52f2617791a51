import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { RawStream } from './helpers/stream.js';

function child(args: string[], onLine: (line: string) => void): ChildProcess {
  const proc = spawn(process.execPath, ['--import=tsx', 'test/fixtures/qos-crash-child.ts', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  createInterface({ input: proc.stdout! }).on('line', onLine);
  return proc;
}

test('kill -9 during durable sends: every send that resolved is delivered after restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'qos.db');
  // Kill at a random point after a modest number of resolved sends.
  const killAfter = 200 + Math.floor(Math.random() * 1800);
  const resolved: string[] = [];
  const sender = child(['send', file], (line) => {
    const m = /^sent (\w+)$/.exec(line);
    if (m) resolved.push(m[1]!);
    if (resolved.length === killAfter) sender.kill('SIGKILL');
  });
  t.teardown(() => sender.kill('SIGKILL'));
  const [, signal] = await new Promise<[number | null, string | null]>((resolve) => sender.once('exit', (c, s) => resolve([c, s])));
  t.is(signal, 'SIGKILL');
  t.true(resolved.length >= killAfter);

  let port = 0;
  const server = child(['serve', file], (line) => {
    const m = /^port (\d+)$/.exec(line);
    if (m) port = Number(m[1]);
  });
  t.teardown(() => server.kill('SIGKILL'));
  const start = Date.now();
  while (port === 0) {
    if (Date.now() - start > 20_000) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  const stream = await RawStream.open(t, `http://127.0.0.1:${port}/sse/test/connect?access-token=crash`);
  const want = new Set(resolved);
  const seen = new Set<string>();
  await stream.until(
    () => {
      for (const e of stream.events) if (e.id) seen.add(e.id);
      return [...want].every((id) => seen.has(id));
    },
    `all ${want.size} resolved sends`,
    30_000,
  );
  const missing = [...want].filter((id) => !seen.has(id));
  t.deepEqual(missing, []);
  t.log(`killed after ${resolved.length} resolved sends; ${seen.size} delivered after restart (extra = unresolved but committed)`);
});
