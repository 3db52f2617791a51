import { randomBytes } from 'node:crypto';
import { positive } from '../core/option-checks.js';
import { StaticDiscovery, type Discovery } from './discovery.js';
import { HttpTransport } from './http-transport.js';
import { DnsDiscovery, type DnsOptions } from './dns-discovery.js';
import { deriveKeys } from './keys.js';
import { MdnsDiscovery, type MdnsOptions } from './mdns-discovery.js';
import type { ClusterTransport } from './transport.js';

/** Options of the LAN cluster (`cluster` option of the plugin or hub). */
export interface ClusterOptions {
  /** Shared secret of the cluster, at least 32 bytes. Required: the cluster refuses to start without one. */
  secret?: string | Buffer;
  /**
   * How peers are found: `static` (the `peers` list, replaceable with `hub.cluster.setPeers`),
   * `mdns`, `dns` (a name resolved every few seconds, e.g. a Kubernetes headless service: see
   * `dns`), or your own {@link Discovery} (e.g. a `StaticDiscovery` you keep to update). Default `static`.
   */
  discovery?: 'static' | 'mdns' | 'dns' | Discovery;
  /** Peers for static discovery, as `host:port`; may be replaced after start with `hub.cluster.setPeers`. Default `[]`. */
  peers?: string[];
  /** Address the internal endpoint binds to and announces. Default `127.0.0.1`. */
  host?: string;
  /** Port of the internal endpoint. Default `0` (random). */
  port?: number;
  /** Nodes of one group form a cluster. Default: the hub's name. */
  group?: string;
  /** Longest wait for one peer in one operation, in ms. Default `1000`. */
  timeoutMs?: number;
  /** Encrypt payloads between nodes (AES-256-GCM). Default `true`. */
  encrypt?: boolean;
  /** How often peers are health-checked, in ms. Default `1000`. */
  healthIntervalMs?: number;
  /** mDNS settings (with `discovery: 'mdns'`). */
  mdns?: MdnsOptions;
  /** DNS settings (required with `discovery: 'dns'`): the name to resolve, and how. */
  dns?: DnsOptions;
  /** This node's id. Default: random. */
  nodeId?: string;
  /** A ready transport instead of HTTP (e.g. `MemoryBus` in tests); `secret` is then not used. */
  transport?: ClusterTransport;
}

/** Builds the transport the options describe; throws a TypeError for bad options (e.g. a short secret). */
export function createTransport(options: ClusterOptions, hubName: string): { transport: ClusterTransport; timeoutMs: number; group: string } {
  if (options === null || typeof options !== 'object') throw new TypeError('cluster options must be an object');
  const timeoutMs = positive(options.timeoutMs, 'cluster.timeoutMs', 1000);
  const group = options.group ?? hubName;
  if (options.transport !== undefined) return { transport: options.transport, timeoutMs, group };
  if (options.secret === undefined) throw new TypeError('cluster.secret is required (at least 32 bytes)');
  const keys = deriveKeys(options.secret, group);
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError('cluster.port must be 0..65535');
  const discovery: Discovery =
    options.discovery === 'mdns'
      ? new MdnsDiscovery(options.mdns)
      : options.discovery === 'dns'
        ? dnsDiscovery(options.dns, port)
        : options.discovery === undefined || options.discovery === 'static'
          ? new StaticDiscovery(options.peers ?? [])
          : options.discovery;
  const transport = new HttpTransport({
    nodeId: options.nodeId ?? randomBytes(8).toString('hex'),
    group,
    keys,
    encrypt: options.encrypt ?? true,
    host: options.host ?? '127.0.0.1',
    port,
    discovery,
    healthIntervalMs: positive(options.healthIntervalMs, 'cluster.healthIntervalMs', 1000),
    timeoutMs,
    maxBodyBytes: 64 * 1024 * 1024,
  });
  return { transport, timeoutMs, group };
}

/** `discovery: 'dns'`: A/AAAA answers carry no port, so the nodes need `dns.port`, SRV records, or one fixed `cluster.port`. */
function dnsDiscovery(options: DnsOptions | undefined, port: number): DnsDiscovery {
  if (options === undefined) throw new TypeError("cluster.dns ({ name }) is required with discovery: 'dns'");
  const discovery = new DnsDiscovery(options);
  if (!discovery.hasPort && port === 0) {
    throw new TypeError('cluster.dns.port, cluster.dns.srv or a fixed cluster.port is required: A/AAAA records carry no port');
  }
  return discovery;
}
