import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { positive } from '../core/option-checks.js';
import type { ShapesOf } from '../core/option-shape.js';
import { assertRedisSource } from '../redis/redis-connection.js';
import type { RedisSource } from '../redis/redis-source.js';
import { StaticDiscovery, type Discovery } from './discovery.js';
import { HttpTransport } from './http-transport.js';
import { DnsDiscovery, type DnsOptions } from './dns-discovery.js';
import { deriveKeys } from './keys.js';
import { MdnsDiscovery, type MdnsOptions } from './mdns-discovery.js';
import { CombinedDiscovery, PrimaryDiscovery } from './primary-discovery.js';
import { chooseNodeAddress, readHostNetwork, type HostNetwork } from './node-address.js';
import { RedisTransport } from './redis-transport.js';
import type { ClusterTransport } from './transport.js';

/**
 * @internal The discovery a node of the Redis engine reports to: told the node and the peers
 * it counts ({@link Discovery.verified}); what it finds is not used (the nodes find each other
 * in Redis). `worker.cluster({ redis })` sets the primary's, whose `pool.ready()` waits for them.
 */
export const REDIS_DISCOVERY = Symbol('redisDiscovery');

/**
 * Options of the cluster (`cluster` option of the plugin or hub): the LAN cluster (HTTP
 * between nodes: `secret` with `peers` or `discovery`), or the Redis engine (`redis`).
 */
export interface ClusterOptions {
  /**
   * Run the cluster over Redis instead of HTTP between nodes: a `redis://` URL or an ioredis
   * client (Sentinel, Cluster). Nodes need no address, port or secret of each other, only the
   * same Redis and {@link ClusterOptions.redisPrefix}; queries answer from a presence
   * directory in Redis. `secret`, `peers`, `discovery`, `host`, `interface`, `advertise`,
   * `port`, `mdns`, `encrypt` and `transport` do not apply (a TypeError if given). Default: off (the LAN cluster).
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
  /**
   * The one address the internal endpoint (node-to-node HTTP) listens on, and announces unless
   * `advertise` is given, e.g. `127.0.0.1` for nodes that all run on this machine. Default:
   * every address of the host (`0.0.0.0` and `::` do the same), announcing the IPv4 address
   * of the default route's interface (else the first non-loopback IPv4 address, else
   * `127.0.0.1`). A doubtful choice (only loopback, several interfaces without a default
   * route, loopback announced over mDNS) is reported once through the hub's `error` event
   * (`ERR_SSE_NODE_ADDRESS`) with what to set.
   */
  host?: string;
  /**
   * A network interface by name (e.g. `eth0`): the internal endpoint listens on its IPv4
   * address only, announces it, and mDNS runs on it. Not with `host`. Default: none (see `host`).
   */
  interface?: string;
  /**
   * The address announced to peers (the mDNS record; this node's own entry in a `peers`
   * list), when it differs from where the endpoint listens: e.g. the address a NAT or a
   * container publishes. An IPv4 address with `discovery: 'mdns'`. Default: `host`, or the
   * detected address (see `host`).
   */
  advertise?: string;
  /** Port of the internal endpoint. Default `0` (random): set one to write firewall rules for it. */
  port?: number;
  /** Nodes of one group form a cluster. Default: the hub's name. */
  group?: string;
  /** Longest wait for one peer in one operation, in ms (with `redis`: also for one Redis command). Default `1000`. */
  timeoutMs?: number;
  /** Encrypt payloads between nodes (AES-256-GCM). Default `true`. */
  encrypt?: boolean;
  /**
   * How often peers are health-checked, in ms (a signed `hello` that must answer within
   * `timeoutMs`). Default `1000`. With `redis`: how often a node beats; a node silent for 3
   * beats is dropped, with its directory entries.
   */
  healthIntervalMs?: number;
  /**
   * Health checks in a row a peer must fail to be marked down (`peer-down`): a peer that
   * vanished (power loss, cable pulled, paused) is down about `healthFailures` ×
   * (`healthIntervalMs` + `timeoutMs`) after it went, 4 s with the defaults. Not with `redis`.
   * Default `2`.
   */
  healthFailures?: number;
  /** mDNS settings (with `discovery: 'mdns'`). */
  mdns?: MdnsOptions;
  /** DNS settings (required with `discovery: 'dns'`): the name to resolve, and how. */
  dns?: DnsOptions;
  /** This node's id. Default: random. */
  nodeId?: string;
  /** A ready transport instead of HTTP (e.g. `MemoryBus` in tests); `secret` is then not used. */
  transport?: ClusterTransport;
  /** @internal See {@link REDIS_DISCOVERY}. */
  [REDIS_DISCOVERY]?: Discovery;
}

/**
 * Builds the transport the options describe; throws a TypeError for bad options (e.g. a short
 * secret). `context.network`: the host's interfaces and default route (read from the host;
 * tests give their own). `context.nameGiven`: false for the Redis engine under a name nobody
 * chose (then `group` or `redisPrefix` must be given).
 */
export function createTransport(
  options: ClusterOptions,
  hubName: string,
  context: { network?: () => HostNetwork; nameGiven?: boolean } = {},
): { transport: ClusterTransport; timeoutMs: number; group: string } {
  const { network = readHostNetwork, nameGiven = true } = context;
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
  // Static and DNS discovery never tell anyone this node's address: only the others publish it.
  const publishes = options.discovery === 'mdns' || (typeof options.discovery === 'object' && publishesAddress(options.discovery));
  const address = chooseNodeAddress(options, network(), publishes);
  if (options.discovery === 'mdns' && !isIPv4(address.advertise)) {
    throw new TypeError(`cluster.advertise must be an IPv4 address with discovery 'mdns' (an A record), got ${JSON.stringify(address.advertise)}`);
  }
  const discovery: Discovery =
    options.discovery === 'mdns'
      ? new MdnsDiscovery({ ...options.mdns, interface: options.mdns?.interface ?? address.multicast })
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
    bind: address.bind,
    advertise: address.advertise,
    addressWarning: address.warning,
    port,
    discovery,
    healthIntervalMs: positive(options.healthIntervalMs, 'cluster.healthIntervalMs', 1000),
    healthFailures: Math.ceil(positive(options.healthFailures, 'cluster.healthFailures', 2)),
    timeoutMs,
    maxBodyBytes: 64 * 1024 * 1024,
  });
  return { transport, timeoutMs, group };
}

/** Whether a discovery object tells other machines this node's address (only the primary's workers hear it from PrimaryDiscovery). */
function publishesAddress(discovery: Discovery): boolean {
  if (discovery instanceof CombinedDiscovery) return discovery.parts.some(publishesAddress);
  return !(discovery instanceof StaticDiscovery) && !(discovery instanceof DnsDiscovery) && !(discovery instanceof PrimaryDiscovery);
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
const LAN_ONLY = [
  'secret',
  'peers',
  'discovery',
  'host',
  'interface',
  'advertise',
  'port',
  'mdns',
  'dns',
  'encrypt',
  'transport',
  'healthFailures',
] as const;

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
  return new RedisTransport({
    nodeId,
    redis: options.redis!,
    prefix,
    heartbeatMs,
    nodeTtlMs: 3 * heartbeatMs,
    commandTimeoutMs: timeoutMs,
    discovery: options[REDIS_DISCOVERY],
  });
}

const MDNS_OPTION_SHAPES: ShapesOf<MdnsOptions> = {
  interface: 'string',
  bind: 'string',
  loopback: 'boolean',
  port: 'number',
  ttlSeconds: 'number',
  intervalMs: 'number',
};

const DNS_OPTION_SHAPES: ShapesOf<DnsOptions> = {
  name: 'string',
  port: 'number',
  srv: 'boolean',
  intervalMs: 'number',
  servers: { arrayOf: 'string' },
};

/** What each cluster option may be (checked by `ssePlugin()` / `createHub()` before anything starts). */
export const CLUSTER_OPTION_SHAPES: ShapesOf<ClusterOptions> = {
  redis: { anyOf: ['string', 'object'] },
  redisPrefix: 'string',
  secret: { anyOf: ['string', 'object'] },
  discovery: { oneOf: ['static', 'mdns', 'dns'], or: 'object' },
  peers: { arrayOf: 'string' },
  host: 'string',
  interface: 'string',
  advertise: 'string',
  port: 'number',
  group: 'string',
  timeoutMs: 'number',
  encrypt: 'boolean',
  healthIntervalMs: 'number',
  healthFailures: 'number',
  mdns: { options: MDNS_OPTION_SHAPES },
  dns: { options: DNS_OPTION_SHAPES },
  nodeId: 'string',
  transport: 'object',
  // Never checked (checkOptionShapes reads string keys): worker.cluster() sets it.
  [REDIS_DISCOVERY]: 'object',
};
