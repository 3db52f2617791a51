import type { ExecutionContext } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

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

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A private LAN of `count` hosts: one namespace each, joined by a bridge in its own
 * namespace, addresses 192.0.2.1.. (documentation range), multicast routed on the LAN.
 * Every namespace is deleted when the test ends, also when it fails.
 */
export function privateLan(t: ExecutionContext, count: number): { hosts: { ns: string; address: string }[] } {
  const tag = `${process.pid % 100000}${Math.floor(Math.random() * 1000)}`;
  const bridge = `sse-br-${tag}`;
  const created: string[] = [];
  t.teardown(() => {
    for (const ns of created.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
  });
  ip('netns', 'add', bridge);
  created.push(bridge);
  ip('-n', bridge, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', bridge, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
  ip('-n', bridge, 'link', 'set', 'br0', 'up');
  const hosts: { ns: string; address: string }[] = [];
  for (let i = 1; i <= count; i++) {
    const ns = `sse-h${i}-${tag}`;
    ip('netns', 'add', ns);
    created.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', bridge);
    ip('-n', bridge, 'link', 'set', `p${i}`, 'master', 'br0');
    ip('-n', bridge, 'link', 'set', `p${i}`, 'up');
    const address = `192.0.2.${i}`;
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'multicast', 'on', 'up');
    ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
    hosts.push({ ns, address });
  }
  return { hosts };
}

/** A process inside a namespace that talks JSON lines on stdin/stdout. Killed when the test ends. */
export class NsProcess {
  readonly messages: Record<string, unknown>[] = [];
  readonly #proc: ChildProcess;
  #waiters: (() => void)[] = [];

  constructor(t: ExecutionContext, ns: string, args: string[], env: Record<string, string>) {
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

  /** Waits for a message that satisfies `match`. */
  async waitFor(match: (m: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
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

  exited(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#proc.exitCode !== null) resolve();
      else this.#proc.once('exit', () => resolve());
    });
  }
}
