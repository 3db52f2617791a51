import { readFileSync } from 'node:fs';
import os from 'node:os';

/** What the host's network looks like: read by {@link readHostNetwork}, given by tests. */
export interface HostNetwork {
  /** As `os.networkInterfaces()`. */
  interfaces: Record<string, readonly os.NetworkInterfaceInfo[] | undefined>;
  /** The interface of the IPv4 default route, when known (Linux: `/proc/net/route`). */
  defaultInterface: string | undefined;
}

/** Where the internal endpoint listens and what it announces, as the options say. */
export interface AddressOptions {
  /** `cluster.host`: one address to listen on (and announce); a wildcard (`0.0.0.0`, `::`) or undefined: every address. */
  host?: string | undefined;
  /** `cluster.interface`: listen on this interface's IPv4 address (and announce it). */
  interface?: string | undefined;
  /** `cluster.advertise`: the address announced to peers, whatever the node listens on. */
  advertise?: string | undefined;
}

/** The address choice of a node. */
export interface NodeAddress {
  /** Address to listen on; undefined: every address of the host. */
  bind: string | undefined;
  /** Address announced to peers (mDNS record, this node's own entry in a peer list). */
  advertise: string;
  /** This host's IPv4 address on the announcing interface, for mDNS's multicast; undefined: the OS's choice. */
  multicast: string | undefined;
  /**
   * Why the announced address may not reach peers on other machines, and what to set: only
   * for a discovery that publishes the address (mDNS, your own). Undefined when the choice is clear.
   */
  warning: string | undefined;
}

/** Reads this host's interfaces and its IPv4 default route's interface (Linux; undefined elsewhere). */
export function readHostNetwork(): HostNetwork {
  let defaultInterface: string | undefined;
  try {
    defaultInterface = defaultRouteInterface(readFileSync('/proc/net/route', 'utf8'));
  } catch {
    // Not Linux, or no procfs: the first non-internal address is taken instead.
  }
  return { interfaces: os.networkInterfaces(), defaultInterface };
}

/** The interface of the IPv4 default route in the text of `/proc/net/route` (the lowest metric wins), or undefined. */
export function defaultRouteInterface(procNetRoute: string): string | undefined {
  let best: { name: string; metric: number } | undefined;
  for (const line of procNetRoute.split('\n').slice(1)) {
    const [name, destination, , flags, , , metric, mask] = line.trim().split(/\s+/);
    if (name === undefined || destination !== '00000000' || mask !== '00000000') continue;
    // RTF_UP: a route being deleted or not usable is not the default.
    if ((parseInt(flags ?? '0', 16) & 1) === 0) continue;
    const m = Number(metric);
    if (best === undefined || m < best.metric) best = { name, metric: m };
  }
  return best?.name;
}

const isWildcard = (host: string | undefined): boolean => host === undefined || host === '' || host === '0.0.0.0' || host === '::';
const isLoopback = (address: string): boolean => address.startsWith('127.') || address === '::1' || address === 'localhost';
/** An IPv4 address peers on a LAN may reach: not loopback, not link-local (169.254/16, no DHCP answer). */
const routable = (i: os.NetworkInterfaceInfo): boolean => i.family === 'IPv4' && !i.internal && !i.address.startsWith('169.254.');

function ipv4Of(network: HostNetwork, name: string): string | undefined {
  const list = network.interfaces[name] ?? [];
  return (list.find(routable) ?? list.find((i) => i.family === 'IPv4'))?.address;
}

function isLocalIPv4(network: HostNetwork, address: string): boolean {
  return Object.values(network.interfaces).some((list) => list?.some((i) => i.family === 'IPv4' && i.address === address));
}

/** Interfaces with a routable IPv4 address, as `name (address)`, first address of each. */
function routableInterfaces(network: HostNetwork): { name: string; address: string }[] {
  const out: { name: string; address: string }[] = [];
  for (const [name, list] of Object.entries(network.interfaces)) {
    const found = list?.find(routable);
    if (found !== undefined) out.push({ name, address: found.address });
  }
  return out;
}

/**
 * Chooses where the node endpoint listens and which address it announces. By default it
 * listens on every address and announces the IPv4 address of the default route's interface,
 * else the first routable IPv4 address, else 127.0.0.1. `publishes`: the discovery sends the
 * announced address to other machines (mDNS): only then is a doubtful choice a warning.
 * @throws TypeError for contradicting options or an interface without an IPv4 address.
 */
export function chooseNodeAddress(options: AddressOptions, network: HostNetwork, publishes: boolean): NodeAddress {
  const { host, interface: name, advertise } = options;
  if (advertise !== undefined && (typeof advertise !== 'string' || advertise === '' || isWildcard(advertise))) {
    throw new TypeError(`cluster.advertise must be one address peers can reach, got ${JSON.stringify(advertise)}`);
  }
  const choice = ((): NodeAddress => {
    if (name !== undefined) {
      if (!isWildcard(host)) throw new TypeError('cluster.host and cluster.interface both say where to listen: give one of them');
      const address = ipv4Of(network, name);
      if (address === undefined) {
        const known = Object.keys(network.interfaces).join(', ');
        throw new TypeError(`cluster.interface ${JSON.stringify(name)} has no IPv4 address on this host (interfaces: ${known})`);
      }
      return { bind: address, advertise: advertise ?? address, multicast: address, warning: undefined };
    }
    if (!isWildcard(host)) {
      return { bind: host, advertise: advertise ?? host!, multicast: isLocalIPv4(network, host!) ? host : undefined, warning: undefined };
    }
    const all = routableInterfaces(network);
    const viaRoute = network.defaultInterface === undefined ? undefined : all.find((i) => i.name === network.defaultInterface);
    const chosen = viaRoute ?? all[0];
    if (chosen === undefined) {
      const warning =
        'The cluster node announces 127.0.0.1: this host has no network interface but loopback, so only nodes on this ' +
        'machine can reach it. Once it has one, set cluster.interface (or cluster.advertise) to the LAN it shares with its peers.';
      return { bind: host === '' ? undefined : host, advertise: advertise ?? '127.0.0.1', multicast: '127.0.0.1', warning };
    }
    const warning =
      viaRoute === undefined && all.length > 1
        ? `The cluster node announces ${chosen.address} (${chosen.name}), the first of several interfaces, and no default ` +
          `route tells which one its peers share: ${all.map((i) => `${i.name} (${i.address})`).join(', ')}. ` +
          'Set cluster.interface to the one on the LAN of its peers, or cluster.advertise to the address they reach it at.'
        : undefined;
    return { bind: host === '' ? undefined : host, advertise: advertise ?? chosen.address, multicast: chosen.address, warning };
  })();
  if (!publishes) return { ...choice, warning: undefined };
  if (choice.warning === undefined && isLoopback(choice.advertise) && routableInterfaces(network).length > 0) {
    choice.warning =
      `The cluster node announces the loopback address ${choice.advertise} over discovery: only nodes on this machine can ` +
      'reach it. Leave cluster.host unset (every address; the default route\u2019s is announced), or set cluster.interface ' +
      'or cluster.advertise to the address of this host on the LAN of its peers.';
  }
  return choice;
}
