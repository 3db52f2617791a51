// A private LAN of network namespaces, for the LAN lab (test/lan/) and `npm run example:lan`.
// No test framework here: test/helpers/netns.ts ties it to a test's teardown.
//
// Layout: a bridge `br0` in a namespace of its own; each host a namespace with `lo` up and an
// `eth0` on the bridge, an address from 192.0.2.0/24 (documentation range), a default route and
// a multicast route on `eth0`. Nothing of the root namespace is attached. A host may sit behind
// a slow, lossy link: its `eth0` is then a TAP device whose frames a user-space relay
// (tap-relay.py; this kernel has no netem) delays and drops on their way to the bridge.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** A slow, lossy link: both directions are delayed and lose frames. */
export interface LinkShape {
  /** One-way delay, in ms (each direction). */
  delayMs: number;
  /** Frames lost, in percent (each direction). */
  lossPercent: number;
}

export interface LanHost {
  /** Name of its network namespace (for `ip netns exec`). */
  ns: string;
  /** Its current address on the LAN. */
  address: string;
  /** Its bridge port, in the bridge's namespace. */
  port: string;
}

const RELAY = fileURLToPath(new URL('./tap-relay.py', import.meta.url));

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Namespaces of every LAN of this process not yet destroyed: deleted at exit, even after a crash of the test. */
const live = new Set<Lan>();
process.once('exit', () => {
  for (const lan of live) lan.destroy();
});

export class Lan {
  readonly hosts: LanHost[] = [];
  /** The bridge's namespace. */
  readonly bridge: string;
  readonly #namespaces: string[] = [];
  readonly #relays: ChildProcess[] = [];
  readonly #tag = randomBytes(3).toString('hex');

  private constructor() {
    this.bridge = `sse-lan-${this.#tag}-br`;
  }

  /**
   * Creates `count` hosts, 192.0.2.1 … 192.0.2.count; `slow` maps a host's index (0-based)
   * to the shape of its link. Deletes what it made if any step fails.
   */
  static async create(count: number, slow: Record<number, LinkShape> = {}): Promise<Lan> {
    const lan = new Lan();
    live.add(lan);
    try {
      lan.#add(lan.bridge);
      ip('-n', lan.bridge, 'link', 'add', 'br0', 'type', 'bridge');
      // Multicast (mDNS) reaches every port, as on an unmanaged switch.
      ip('-n', lan.bridge, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
      ip('-n', lan.bridge, 'link', 'set', 'br0', 'up');
      for (let i = 0; i < count; i++) await lan.#host(i, slow[i]);
    } catch (err) {
      lan.destroy();
      throw err;
    }
    return lan;
  }

  #add(ns: string): void {
    ip('netns', 'add', ns);
    this.#namespaces.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  async #host(i: number, shape: LinkShape | undefined): Promise<void> {
    const host: LanHost = { ns: `sse-lan-${this.#tag}-h${i + 1}`, address: `192.0.2.${i + 1}`, port: `p${i + 1}` };
    this.#add(host.ns);
    if (shape === undefined) {
      ip('link', 'add', 'eth0', 'netns', host.ns, 'type', 'veth', 'peer', 'name', host.port, 'netns', this.bridge);
    } else {
      ip('-n', host.ns, 'tuntap', 'add', 'dev', 'eth0', 'mode', 'tap');
      ip('-n', this.bridge, 'tuntap', 'add', 'dev', host.port, 'mode', 'tap');
      await this.#relay(host, shape);
    }
    ip('-n', this.bridge, 'link', 'set', host.port, 'master', 'br0');
    ip('-n', this.bridge, 'link', 'set', host.port, 'up');
    ip('-n', host.ns, 'link', 'set', 'eth0', 'multicast', 'on', 'up');
    this.#configure(host);
    this.hosts.push(host);
  }

  /** Address, default route and multicast route of a host's eth0. */
  #configure(host: LanHost): void {
    ip('-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
    // `replace`: after a readdress the routes may still be there.
    ip('-n', host.ns, 'route', 'replace', 'default', 'dev', 'eth0');
    ip('-n', host.ns, 'route', 'replace', '224.0.0.0/4', 'dev', 'eth0');
  }

  async #relay(host: LanHost, shape: LinkShape): Promise<void> {
    const seed = String(Math.floor(Math.random() * 2 ** 31));
    const relay = spawn('python3', [RELAY, host.ns, 'eth0', this.bridge, host.port, String(shape.delayMs), String(shape.lossPercent), seed], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#relays.push(relay);
    const lines = createInterface({ input: relay.stdout! });
    const ready = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => line === 'ready' && resolve());
      relay.once('error', reject);
      relay.once('exit', (code) => reject(new Error(`tap-relay.py exited with ${code}`)));
    });
    const timeout = setTimeout(() => relay.kill(), 10_000);
    try {
      await ready;
    } finally {
      clearTimeout(timeout);
    }
  }

  /** Takes the host's port off the bridge: it and the others no longer hear each other; nobody is told (no FIN, no link change). */
  partition(host: LanHost): void {
    ip('-n', this.bridge, 'link', 'set', host.port, 'nomaster');
  }

  /** Puts the host's port back on the bridge. */
  heal(host: LanHost): void {
    ip('-n', this.bridge, 'link', 'set', host.port, 'master', 'br0');
  }

  /** The host's own link goes down (a pulled cable seen from the others: no FIN, no RST). */
  linkDown(host: LanHost): void {
    ip('-n', host.ns, 'link', 'set', 'eth0', 'down');
  }

  /** Gives the host a new address (its old one is gone from the LAN), routes included; its link comes up if it was down. */
  readdress(host: LanHost, address: string): void {
    ip('-n', host.ns, 'addr', 'flush', 'dev', 'eth0');
    ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
    host.address = address;
    this.#configure(host);
  }

  /** Stops the relays and deletes every namespace; safe to call twice. */
  destroy(): void {
    live.delete(this);
    for (const relay of this.#relays.splice(0)) relay.kill('SIGKILL');
    for (const ns of this.#namespaces.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
  }
}
