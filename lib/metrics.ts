import { hostname } from 'node:os';
// Type-only and never referenced by an exported type: the emitted .d.ts must not import
// prom-client, an optional peer dependency that a TypeScript user may not have installed.
import type { Registry as PromRegistry } from 'prom-client';
import type { Hub } from './hub.js';
import type { ReplicationStats } from './qos/qos.js';

/**
 * The part of a prom-client `Registry` that {@link collectMetrics} and its callers use,
 * declared here so that this package's types compile without prom-client installed.
 * prom-client's `Registry` fits it; at run time it must be one, since the metrics register
 * themselves in it. To keep prom-client's own type (e.g. for `Registry.merge`), create the
 * registry yourself and pass it in {@link MetricsOptions.registry}.
 */
export interface MetricsRegistry {
  /** The current values of every registered metric, in the format {@link MetricsRegistry.contentType} names. */
  metrics(): Promise<string>;
  /** The `Content-Type` to serve {@link MetricsRegistry.metrics} with. */
  readonly contentType: string;
  /** Adds a prom-client metric (the metrics {@link collectMetrics} creates do this themselves). */
  registerMetric(metric: object): void;
}

// test/types/prom-registry.ts fails the repo's type-check if a prom-client release stops fitting.

/** Options of {@link collectMetrics}. */
export interface MetricsOptions {
  /** A prom-client `Registry` to register in. Default: a new `Registry` (prom-client's global one is never touched). */
  registry?: MetricsRegistry;
  /** Prefix of every metric name. Default `sse_`. */
  prefix?: string;
}

/** What {@link collectMetrics} returns: the registry, and a way to stop observing. */
export interface SseMetrics {
  /** The registry the metrics are in: {@link MetricsOptions.registry} if given, else a new prom-client `Registry`. */
  registry: MetricsRegistry;
  /** Removes the hub event listeners (the metrics stay registered). */
  stop(): void;
}

/**
 * Exposes the hubs' metrics for Prometheus through prom-client (an optional peer
 * dependency: install it to use this). Labels: `hub` (the system) and `node` (the cluster
 * node id, else the host name). Gauges and totals are read from the hubs at scrape time;
 * only ack and peer-RPC latencies are observed as they happen.
 *
 * | metric | type | meaning |
 * |---|---|---|
 * | `sse_connections` | gauge | open streams on this node |
 * | `sse_users` | gauge | distinct online user ids on this node |
 * | `sse_events_sent_total` | counter | events written by sends |
 * | `sse_events_failed_total` | counter | targeted connections a send could not write |
 * | `sse_bytes_sent_total` | counter | bytes of those events |
 * | `sse_connects_total`, `sse_disconnects_total` | counter | streams opened / ended |
 * | `sse_slow_closes_total` | counter | streams closed for not reading |
 * | `sse_qos_pending` | gauge | stored durable messages (this node's store) |
 * | `sse_qos_ack_seconds` | histogram | time from a durable send to its acknowledgement |
 * | `sse_qos_expired_total` | counter | durable targets that expired unacknowledged |
 * | `sse_qos_copies_held` | gauge | copies this node holds of its peers' durable messages (`qos.replication`) |
 * | `sse_qos_replicated_total`, `sse_qos_under_replicated_total` | counter | this node's durable sends committed on every copy asked for / on fewer |
 * | `sse_qos_served_from_copies_total` | counter | durable messages this node served from copies, their owner being away |
 * | `sse_qos_duplicates_total` | counter | acks told to this node after an absence for targets it had already removed (delivered on both sides of a partition) |
 * | `sse_qos_rereplicated_total` | counter | copies sent again after a node was gone longer than `rereplicateAfterMs` |
 * | `sse_cluster_peers` | gauge | verified peers up |
 * | `sse_cluster_rpc_seconds` | histogram | peer request latency, labels `peer`, `operation`, `ok` |
 */
export async function collectMetrics(hubs: Hub | Hub[], options: MetricsOptions = {}): Promise<SseMetrics> {
  let client: typeof import('prom-client');
  try {
    client = await import('prom-client');
  } catch (err) {
    throw new Error('collectMetrics needs the optional peer dependency prom-client: npm install prom-client', { cause: err });
  }
  const list = Array.isArray(hubs) ? hubs : [hubs];
  const registry: MetricsRegistry = options.registry ?? new client.Registry();
  const p = options.prefix ?? 'sse_';
  const labels = ['hub', 'node'] as const;
  const labelsOf = (hub: Hub): { hub: string; node: string } => ({ hub: hub.name, node: hub.cluster?.nodeId ?? hostname() });
  // MetricsRegistry stands in for prom-client's type only in the published signature.
  const registers = [registry as PromRegistry];

  const gauge = (name: string, help: string, read: (hub: Hub) => number): void => {
    new client.Gauge({
      name: p + name,
      help,
      labelNames: labels,
      registers,
      collect() {
        for (const hub of list) this.set(labelsOf(hub), read(hub));
      },
    });
  };
  // Totals live in hub.stats; a scrape adds what changed since the last one.
  const counter = (name: string, help: string, read: (hub: Hub) => number): void => {
    const last = new Map<Hub, number>();
    new client.Counter({
      name: p + name,
      help,
      labelNames: labels,
      registers,
      collect() {
        for (const hub of list) {
          const now = read(hub);
          const delta = now - (last.get(hub) ?? 0);
          last.set(hub, now);
          this.inc(labelsOf(hub), Math.max(0, delta));
        }
      },
    });
  };

  gauge('connections', 'Open SSE streams on this node', (hub) => countLocal(hub));
  gauge('users', 'Distinct online user ids on this node', (hub) => new Set([...hub.connections()].map((c) => c.userId).filter(Boolean)).size);
  counter('events_sent_total', 'Events written to connections (sends, durable live, forwarded and replayed)', (hub) => hub.stats.eventsSent);
  counter('events_failed_total', 'Targeted connections a send could not write to', (hub) => hub.stats.eventsFailed);
  counter('bytes_sent_total', 'Bytes of the events written by sends', (hub) => hub.stats.bytesSent);
  counter('connects_total', 'Streams opened', (hub) => hub.stats.connects);
  counter('disconnects_total', 'Streams ended', (hub) => hub.stats.disconnects);
  counter('slow_closes_total', 'Streams closed for not reading', (hub) => hub.stats.slowCloses);
  gauge('qos_pending', "Stored durable messages in this node's store", (hub) => (hub.hasQos ? hub.qos.pendingCount() : 0));
  const copies = (hub: Hub): ReplicationStats | undefined => (hub.hasQos ? hub.qos.replicationStats() : undefined);
  gauge('qos_copies_held', "Copies this node holds of its peers' durable messages", (hub) => copies(hub)?.held ?? 0);
  counter('qos_replicated_total', "This node's durable sends committed on every copy asked for", (hub) => copies(hub)?.replicated ?? 0);
  counter(
    'qos_under_replicated_total',
    "This node's durable sends committed on fewer nodes than asked for",
    (hub) => copies(hub)?.underReplicated ?? 0,
  );
  counter(
    'qos_served_from_copies_total',
    'Durable messages served from copies while their owner was away',
    (hub) => copies(hub)?.servedFromCopies ?? 0,
  );
  counter(
    'qos_duplicates_total',
    'Acks told after an absence for targets already removed here (delivered on both sides)',
    (hub) => copies(hub)?.duplicates ?? 0,
  );
  counter(
    'qos_rereplicated_total',
    'Copies sent again after a node was gone longer than rereplicateAfterMs',
    (hub) => copies(hub)?.rereplicated ?? 0,
  );
  gauge('cluster_peers', 'Verified cluster peers that are up', (hub) => hub.cluster?.peers().length ?? 0);

  const ackSeconds = new client.Histogram({
    name: p + 'qos_ack_seconds',
    help: 'Time from a durable send to its acknowledgement',
    labelNames: labels,
    registers,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400],
  });
  const expired = new client.Counter({
    name: p + 'qos_expired_total',
    help: 'Durable targets that expired unacknowledged',
    labelNames: labels,
    registers,
  });
  const rpcSeconds = new client.Histogram({
    name: p + 'cluster_rpc_seconds',
    help: 'Latency of requests to cluster peers',
    labelNames: [...labels, 'peer', 'operation', 'ok'],
    registers,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });

  const stops: (() => void)[] = [];
  for (const hub of list) {
    const onAcked = (e: { messageId: string; complete: boolean }): void => {
      // The id starts with the send's millisecond clock (see MessageIdGenerator).
      const sentAt = Number.parseInt(e.messageId.slice(0, 12), 16);
      if (Number.isFinite(sentAt)) ackSeconds.observe(labelsOf(hub), Math.max(0, Date.now() - sentAt) / 1000);
    };
    const onExpired = (): void => expired.inc(labelsOf(hub));
    const onRpc = (e: { nodeId: string; operation: string; ms: number; ok: boolean }): void => {
      rpcSeconds.observe({ ...labelsOf(hub), peer: e.nodeId, operation: e.operation, ok: String(e.ok) }, e.ms / 1000);
    };
    hub.on('qos-acked', onAcked);
    hub.on('qos-expired', onExpired);
    hub.on('peer-rpc', onRpc);
    stops.push(() => {
      hub.off('qos-acked', onAcked);
      hub.off('qos-expired', onExpired);
      hub.off('peer-rpc', onRpc);
    });
  }
  return { registry, stop: () => stops.forEach((s) => s()) };
}

function countLocal(hub: Hub): number {
  let n = 0;
  for (const _ of hub.connections()) n++;
  return n;
}
