import type { ExecutionContext } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Lan, type LinkShape } from './lan.js';

/** Why network-namespace tests cannot run here, or undefined if they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs as root)';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return 'the `ip` command (iproute2) is missing';
  }
  return undefined;
}

/**
 * A private LAN of `count` hosts for this test (see {@link Lan}): 192.0.2.1.., joined by a
 * bridge in its own namespace; `slow` puts hosts behind a slow, lossy link. Every namespace
 * is deleted when the test ends, also when it fails.
 */
export async function privateLan(t: ExecutionContext, count: number, slow: Record<number, LinkShape> = {}): Promise<Lan> {
  const lan = await Lan.create(count, slow);
  t.teardown(() => lan.destroy());
  return lan;
}

/** Who ends a process: a test (ava's ExecutionContext), or a script's own list. */
export interface Teardown {
  teardown(fn: () => void): void;
}

/** A process inside a namespace that talks JSON lines on stdin/stdout. Killed when the test ends. */
export class NsProcess {
  readonly messages: Record<string, unknown>[] = [];
  readonly #proc: ChildProcess;
  #waiters: (() => void)[] = [];

  constructor(t: Teardown, ns: string, args: string[], env: Record<string, string>) {
    this.#proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import=tsx', ...args], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    t.teardown(() => {
      this.#proc.kill('SIGKILL');
    });
    createInterface({ input: this.#proc.stdout! }).on('line', (line) => {
      try {
        this.messages.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        return;
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  send(cmd: unknown): void {
    this.#proc.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  /** Sends a command with a fresh `ref` and waits for the answer that carries it. */
  async request(cmd: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const ref = randomBytes(6).toString('hex');
    const from = this.messages.length;
    this.send({ ...cmd, ref });
    return this.waitFor((m) => m.ref === ref, `the answer to ${JSON.stringify(cmd).slice(0, 200)}`, timeoutMs, from);
  }

  /** Waits for a message that satisfies `match`, among those from index `from` on. */
  async waitFor(match: (m: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${what}; got ${JSON.stringify(this.messages).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Ends the process at once (SIGKILL): no mDNS goodbye, no clean close (its kernel still closes its sockets). */
  kill(): void {
    this.#proc.kill('SIGKILL');
  }

  exited(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#proc.exitCode !== null) resolve();
      else this.#proc.once('exit', () => resolve());
    });
  }
}
