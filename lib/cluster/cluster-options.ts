import { randomBytes } from 'node:crypto';
import { positive } from '../core/option-checks.js';
import { assertRedisSource, type RedisSource } from '../redis/redis-connection.js';
import { StaticDiscovery, type Discovery } from './discovery.js';
import { HttpTransport } from './http-transport.js';
import { DnsDiscovery, type DnsOptions } from './dns-discovery.js';
import { deriveKeys } from './keys.js';
import { MdnsDiscovery, type MdnsOptions } from './mdns-discovery.js';
import { RedisTransport } from './redis-transport.js';
import type { ClusterTransport } from './transport.js';

/**
 * Options of the cluster (`cluster` option of the plugin or hub): the LAN cluster (HTTP
 * between nodes: `secret` with `peers` or `discovery`), or the Redis engine (`redis`).
 */
export interface ClusterOptions {
  /**
   * Run the cluster over Redis instead of HTTP between nodes: a `redis://` URL or an ioredis
   * client (Sentinel, Cluster). Nodes need no address, port or secret of each other, only the
   * same Redis and {@link ClusterOptions.redisPrefix}; queries answer from a presence
   * directory in Redis. `secret`, `peers`, `discovery`, `host`, `port`, `mdns`, `encrypt`
   * and `transport` do not apply (a TypeError if given). Default: off (the LAN cluster).
   */
  redis?: RedisSource;
  /**
   * Prefix of the Redis engine's keys and channels: nodes with the same prefix are one
   * cluster. With `redis`, this, `group` or the hub's `name` must be given (else a TypeError
   * at start): two apps on one Redis that kept the default name would merge into one cluster.
   * Default `sse:` + `group`.
   */
  redisPrefix?: string;
  /** Shared secret of the LAN cluster, at least 32 bytes. Required without `redis`: the cluster refuses to start without one. */
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
  /** Longest wait for one peer in one operation, in ms (with `redis`: also for one Redis command). Default `1000`. */
  timeoutMs?: number;
  /** Encrypt payloads between nodes (AES-256-GCM). Default `true`. */
  encrypt?: boolean;
  /**
   * How often peers are health-checked, in ms. Default `1000`. With `redis`: how often a node
   * beats; a node silent for 3 beats is dropped, with its directory entries.
   */
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

/**
 * Builds the transport the options describe; throws a TypeError for bad options (e.g. a short
 * secret, or the Redis engine under a name nobody chose: `nameGiven` false and neither
 * `group` nor `redisPrefix`).
 */
export function createTransport(
  options: ClusterOptions,
  hubName: string,
  nameGiven = true,
): { transport: ClusterTransport; timeoutMs: number; group: string } {
  if (options === null || typeof options !== 'object') throw new TypeError('cluster options must be an object');
  const timeoutMs = positive(options.timeoutMs, 'cluster.timeoutMs', 1000);
  const group = options.group ?? hubName;
  if (options.redis !== undefined) return { transport: redisTransport(options, timeoutMs, group, nameGiven), timeoutMs, group };
  if (options.redisPrefix !== undefined) throw new TypeError('cluster.redisPrefix needs cluster.redis');
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

/** Options of the LAN cluster that contradict `redis`. */
const LAN_ONLY = ['secret', 'peers', 'discovery', 'host', 'port', 'mdns', 'dns', 'encrypt', 'transport'] as const;

function redisTransport(options: ClusterOptions, timeoutMs: number, group: string, nameGiven: boolean): RedisTransport {
  const lan = LAN_ONLY.filter((name) => options[name] !== undefined);
  if (lan.length > 0) throw new TypeError(`cluster.redis runs without ${lan.map((n) => `cluster.${n}`).join(', ')}: remove them or cluster.redis`);
  assertRedisSource(options.redis);
  const prefix = options.redisPrefix ?? `sse:${group}`;
  if (typeof prefix !== 'string' || prefix === '' || /\s/.test(prefix))
    throw new TypeError('cluster.redisPrefix must be a non-empty string without spaces');
  if (!nameGiven && options.group === undefined && options.redisPrefix === undefined) {
    throw new TypeError(
      `cluster.redis needs a name of its own: set the hub's \`name\` (or cluster.redisPrefix). Nodes on one Redis and prefix are one cluster: two apps that kept the default name (${prefix}) would merge`,
    );
  }
  const nodeId = options.nodeId ?? randomBytes(8).toString('hex');
  if (typeof nodeId !== 'string' || !/^[\w.-]{1,64}$/.test(nodeId)) throw new TypeError('cluster.nodeId must be 1-64 letters, digits, _ . -');
  const heartbeatMs = positive(options.healthIntervalMs, 'cluster.healthIntervalMs', 1000);
  return new RedisTransport({ nodeId, redis: options.redis!, prefix, heartbeatMs, nodeTtlMs: 3 * heartbeatMs, commandTimeoutMs: timeoutMs });
}
