// Hardening: nobody without the cluster secret can make a node buffer request bodies.
import test from 'ava';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';

const CONNECTIONS = 40;
/** How long a flooding client waits for an answer to its headers before it sends the body. */
const ANSWER_WAIT_MS = 1000;
const DECLARED = 63 * 1024 * 1024;

test('pre-auth memory: 40 connections with bogus signatures and 63 MiB bodies are refused before a body is read', async (t) => {
  t.timeout(120_000);
  const child = spawn(process.execPath, ['--expose-gc', '--import=tsx', 'test/fixtures/rpc-node.ts'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const replies: ((msg: Record<string, number>) => void)[] = [];
  const ready = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, number>;
      if (msg.port !== undefined) resolve(msg.port);
      else replies.shift()?.(msg);
    });
    child.once('exit', (code) => reject(new Error(`node exited with ${code}`)));
  });
  const port = await ready;
  const mem = (): Promise<number> =>
    new Promise((resolve) => {
      replies.push((m) => resolve(m.rss!));
      child.stdin!.write('mem\n');
    });
  const before = await mem();
  let peak = before;
  const sampler = setInterval(() => void mem().then((rss) => (peak = Math.max(peak, rss))), 100);
  const statuses = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => flood(port, i)));
  clearInterval(sampler);
  peak = Math.max(peak, await mem());
  t.log(`rss before ${mb(before)} MB, peak ${mb(peak)} MB; statuses ${[...new Set(statuses)].join(', ')}`);
  t.true(
    statuses.every((s) => s === 401),
    `every one answered 401 on its headers: ${statuses.join(',')}`,
  );
  // Before the fix the node read every body first: 0.5 GB to 1.5 GB within seconds.
  t.true(peak - before < 64 * 1024 * 1024, `rss grew by ${mb(peak - before)} MB`);
});

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/**
 * Sends bogus signed headers announcing a 63 MiB body; unless answered within
 * `ANSWER_WAIT_MS`, streams the body until answered. Resolves to the status (0: none).
 */
function flood(port: number, i: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunk = Buffer.alloc(1024 * 1024, i);
    let sent = 0;
    let answer = '';
    let done = false;
    const finish = (status: number): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(status);
    };
    socket.on('connect', () => {
      socket.write(
        [
          'POST /rpc HTTP/1.1',
          'Host: 127.0.0.1',
          `Content-Length: ${DECLARED}`,
          'x-sse-node: attacker',
          'x-sse-to: ',
          `x-sse-time: ${Date.now()}`,
          `x-sse-nonce: ${'0'.repeat(31)}${i % 10}`,
          `x-sse-digest: ${'a'.repeat(64)}`,
          `x-sse-signature: ${'b'.repeat(64)}`,
          '',
          '',
        ].join('\r\n'),
      );
      const pump = (): void => {
        while (!done && sent < DECLARED) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      // The body follows only if no answer came on the headers: a node that verifies first
      // answers at once, and its answer cannot be lost to the reset that closing a socket with
      // unread data sends; a node that reads bodies first is flooded and fails the RSS check.
      setTimeout(pump, ANSWER_WAIT_MS);
    });
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (m) finish(Number(m[1]));
    });
    socket.on('error', () => finish(0));
    socket.on('close', () => finish(0));
    setTimeout(() => finish(0), 60_000).unref();
  });
}
