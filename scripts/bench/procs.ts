// Child processes of a benchmark orchestrator: forked with tsx and an IPC channel, killed
// when the orchestrator exits (normally, by a signal or by its own time limit, `stopAfter`).
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Rpc } from './ipc.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const root = join(here, '..', '..');

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => process.exit(130));

/** Bounds the run: still running after `ms`, it prints `message` and exits with 1 (which kills the children). */
export function stopAfter(ms: number, message: string): void {
  setTimeout(() => {
    console.error(message);
    process.exit(1);
  }, ms).unref();
}

/** Forks `file` (relative to scripts/bench) and waits for its `{ready}` message. */
export async function spawn(
  file: string,
  args: string[],
  execArgv: string[],
  label: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ rpc: Rpc; ready: unknown }> {
  const child = fork(join(here, file), args, {
    cwd: root,
    env,
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const rpc = new Rpc(child, label);
  const ready = await new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start`)), 30_000);
    child.on('message', (m) => {
      const r = (m as { ready?: unknown }).ready;
      if (r !== undefined) {
        clearTimeout(timer);
        resolve(r);
      }
    });
    child.once('exit', (code) => reject(new Error(`${label} exited with ${code} before it was ready`)));
  });
  return { rpc, ready };
}

/** Asks a child to stop; kills it if it has not exited within 10 s. */
export async function stop(rpc: Rpc): Promise<void> {
  const child = rpc.child;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  await rpc.call('stop', {}, 5_000).catch(() => undefined);
  await Promise.race([exited, sleep(10_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
