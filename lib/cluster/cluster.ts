import type { Connection } from '../local/connection.js';
import { encodeFrame } from '../core/frame.js';
import type { Hub } from '../hub.js';
import type { TargetRef } from '../qos/store.js';
import { logRefsOf, queueRefFor, queueRefsOf } from '../qos/target-refs.js';
import { StaticDiscovery } from './discovery.js';
import type { ClusterRequest, ClusterTargetKind, HelloAnswer, QueryName, SendItem, WireMessage } from './messages.js';
import type { ClusterTransport } from './transport.js';

/** The answers of the peers to one fan-out, and which peers failed to answer. */
export interface FanOut<T> {
  values: T[];
  /** Node ids that failed or timed out: the result is partial. */
  failed: string[];
}

interface PendingSend {
  item: SendItem;
  resolve: (result: FanOut<number>) => void;
}

const PENDING_PAGE = 10_000;

/**
 * The cluster side of a hub: forwards operations to the peers and answers theirs.
 * Sends made in one turn of the event loop go to each peer as one request (coalescing),
 * every peer is asked in parallel, and a peer that does not answer within the timeout
 * only costs that timeout and is reported as failed — never a hang, never a silent success.
 */
export class Cluster {
  readonly #hub: Hub;
  readonly #transport: ClusterTransport;
  readonly #timeoutMs: number;
  readonly #group: string;
  #batch: PendingSend[] = [];
  #scheduled = false;
  #closed = false;

  /** @internal Created by the hub from its `cluster` option. */
  constructor(hub: Hub, transport: ClusterTransport, options: { timeoutMs: number; group: string }) {
    this.#hub = hub;
    this.#transport = transport;
    this.#timeoutMs = options.timeoutMs;
    this.#group = options.group;
    transport.on('error', (err) => hub.reportError(err));
    transport.on('peer-up', (peer) => {
      hub._emitCluster('peer-up', peer);
      // A node that (re)joins may hold durable messages for users connected here meanwhile.
      if (peer.qosTag !== undefined) {
        for (const conn of hub.connections()) {
          if (conn.userId !== undefined || conn.accessToken !== undefined) {
            this.onOpen(conn, undefined, peer.nodeId).catch((err: unknown) => hub.reportError(err));
          }
        }
      }
    });
    transport.on('peer-down', (nodeId) => hub._emitCluster('peer-down', nodeId));
  }

  get nodeId(): string {
    return this.#transport.nodeId;
  }

  /** Where this node's internal endpoint listens, when it has one (HTTP transport). */
  get address(): { host: string; port: number } | undefined {
    return (this.#transport as { address?: { host: string; port: number } }).address;
  }

  /**
   * Replaces the static peer list (`host:port`, like the `peers` option), also after start:
   * new addresses are probed at once and become peers once verified; removed ones go down.
   * @throws TypeError for a bad list, or if this node does not use static discovery.
   */
  setPeers(peers: readonly string[]): void {
    const discovery = (this.#transport as { discovery?: unknown }).discovery;
    if (!(discovery instanceof StaticDiscovery)) throw new TypeError('cluster.setPeers needs static discovery');
    discovery.setPeers(peers);
  }

  /** Verified peers that are up. */
  peers(): HelloAnswer[] {
    return this.#transport.peers();
  }

  /** @internal */
  async start(qosTag: string | undefined): Promise<void> {
    const self: HelloAnswer = { nodeId: this.#transport.nodeId, group: this.#group, protocol: 1 };
    if (qosTag !== undefined) self.qosTag = qosTag;
    await this.#transport.start((from, request) => this.#handle(from, request), self);
  }

  // ---- outgoing ----------------------------------------------------------------------

  /** Forwards a send to every peer; resolves to the peers' counts. Coalesced per tick. */
  send(item: SendItem): Promise<FanOut<number>> {
    if (this.#closed || this.#transport.peers().length === 0) return Promise.resolve({ values: [], failed: [] });
    return new Promise((resolve) => {
      this.#batch.push({ item, resolve });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flushSends());
      }
    });
  }

  async #flushSends(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#batch;
    this.#batch = [];
    const items = batch.map((p) => p.item);
    const results = await this.#fanOut<number[]>({ type: 'send', items });
    batch.forEach((p, i) => {
      p.resolve({ values: results.values.map((counts) => Number(counts[i] ?? 0)), failed: results.failed });
    });
  }

  query<T>(name: QueryName, args: unknown[]): Promise<FanOut<T>> {
    return this.#fanOut<T>({ type: 'query', name, args });
  }

  disconnect(kind: ClusterTargetKind, keys: string[], reconnect: boolean, reason: 'kick' | 'client'): Promise<FanOut<number>> {
    return this.#fanOut<number>({ type: 'disconnect', kind, keys, reconnect, reason });
  }

  /** Sets online time on the peers; each answers a count per key (so that offline keys are known). */
  duration(kind: ClusterTargetKind, keys: string[], seconds: number): Promise<FanOut<number[]>> {
    return this.#fanOut<number[]>({ type: 'duration', kind, keys, seconds });
  }

  /** Changes the listeners of a connection held by a peer. Undefined if no peer holds it. */
  async listeners(connectionId: string, names: string[], add: boolean): Promise<string[] | undefined> {
    const result = await this.#fanOut<string[] | null>({ type: 'listeners', connectionId, names, add });
    return result.values.find((v): v is string[] => Array.isArray(v));
  }

  /** Sends acks of durable messages to the node that owns them (found by the id's tag). */
  async forwardAcks(items: { messageId: string; targets: TargetRef[] }[], connectionId: string, by: 'ack' | 'write'): Promise<number> {
    const byOwner = new Map<string, typeof items>();
    for (const peer of this.#transport.peers()) {
      if (peer.qosTag === undefined) continue;
      const own = items.filter((i) => i.messageId.endsWith(peer.qosTag!));
      if (own.length > 0) byOwner.set(peer.nodeId, own);
    }
    let count = 0;
    await Promise.all(
      [...byOwner].map(async ([nodeId, own]) => {
        try {
          count += Number(await this.#transport.request(nodeId, { type: 'qos-ack', items: own, connectionId, by }, this.#timeoutMs));
        } catch (err) {
          // The owner keeps the message pending: it is resent on the next connection (at-least-once).
          this.#hub._emitCluster('peer-error', { nodeId, operation: 'qos-ack', error: err });
        }
      }),
    );
    return count;
  }

  /**
   * A stream opened here: ask every owner of durable messages for what is pending for its
   * user and token (and the retained log after its resume point), and write it.
   */
  async onOpen(conn: Connection, events?: string[], onlyPeer?: string): Promise<void> {
    const refs = queueRefsOf(conn);
    const lastEventId = events === undefined && onlyPeer === undefined ? conn.client.lastEventId : undefined;
    const logRefs = lastEventId === undefined ? [] : logRefsOf(conn);
    if ((refs.length === 0 && logRefs.length === 0) || this.#transport.peers().length === 0) return;
    const request: ClusterRequest = { type: 'qos-pending', refs, logRefs };
    if (lastEventId !== undefined) request.lastEventId = lastEventId;
    if (events !== undefined) request.events = events;
    await Promise.all(
      // Only nodes with a durable store can own pending messages.
      this.#transport.peers().filter((peer) => peer.qosTag !== undefined && (onlyPeer === undefined || peer.nodeId === onlyPeer)).map(async (peer) => {
        let messages: WireMessage[];
        try {
          messages = (await this.#transport.request(peer.nodeId, request, this.#timeoutMs)) as WireMessage[];
        } catch (err) {
          this.#hub._emitCluster('peer-error', { nodeId: peer.nodeId, operation: 'qos-pending', error: err });
          return;
        }
        const written: { messageId: string; targets: TargetRef[] }[] = [];
        for (const m of messages) {
          if (m.listening && !conn.listeners.has(m.event)) continue;
          if (conn.bufferedAmount > this.#hub.options.writeBufferLimit / 2) await conn.whenDrained();
          if (!conn.write(encodeFrame({ event: m.event, data: m.data, id: m.id }))) return;
          const target = queueRefFor(conn, m.kind);
          if (target !== undefined) written.push({ messageId: m.id, targets: [target] });
        }
        if (!conn.client.ack && written.length > 0) await this.forwardAcks(written, conn.id, 'write');
      }),
    );
  }

  async #fanOut<T>(request: ClusterRequest): Promise<FanOut<T>> {
    const peers = this.#transport.peers();
    const values: T[] = [];
    const failed: string[] = [];
    await Promise.all(
      peers.map(async (peer) => {
        const started = performance.now();
        try {
          values.push((await this.#transport.request(peer.nodeId, request, this.#timeoutMs)) as T);
          this.#hub._emitCluster('peer-rpc', { nodeId: peer.nodeId, operation: request.type, ms: performance.now() - started, ok: true });
        } catch (err) {
          failed.push(peer.nodeId);
          this.#hub._emitCluster('peer-rpc', { nodeId: peer.nodeId, operation: request.type, ms: performance.now() - started, ok: false });
          this.#hub._emitCluster('peer-error', { nodeId: peer.nodeId, operation: request.type, error: err });
        }
      }),
    );
    return { values, failed };
  }

  // ---- incoming ----------------------------------------------------------------------

  async #handle(_from: string, request: ClusterRequest): Promise<unknown> {
    const hub = this.#hub;
    switch (request.type) {
      case 'hello':
        return null;
      case 'send':
        return request.items.map((item) => this.#deliverForwarded(item));
      case 'query':
        return hub._localQuery(request.name, request.args);
      case 'disconnect':
        return hub._localDisconnect(request.kind, request.keys, request.reconnect, request.reason);
      case 'duration':
        return request.keys.map((key) => hub._localDuration(request.kind, [key], request.seconds));
      case 'listeners': {
        const conn = hub.getLocalConnection(request.connectionId);
        if (conn === undefined) return null;
        return request.add ? hub.addListeners(conn, request.names) : hub.removeListeners(conn, request.names);
      }
      case 'qos-pending':
        return hub.hasQos ? hub.qos._pendingFor(request.refs, request.logRefs, request.lastEventId, request.events, PENDING_PAGE) : [];
      case 'qos-ack':
        return hub.hasQos ? hub.qos._ackForwarded(request.items, request.connectionId, request.by) : 0;
    }
  }

  /** Writes a forwarded send here; durable ones written to clients that cannot ack are acked to their owner. */
  #deliverForwarded(item: SendItem): number {
    const writeAcked: { connectionId: string; target: TargetRef }[] = [];
    const count = this.#hub._localSend(item, (conn) => {
      if (item.id === undefined || conn.client.ack) return;
      const target = queueRefFor(conn, item.kind);
      if (target !== undefined) writeAcked.push({ connectionId: conn.id, target });
    });
    for (const { connectionId, target } of writeAcked) {
      void this.forwardAcks([{ messageId: item.id!, targets: [target] }], connectionId, 'write');
    }
    return count;
  }

  /** @internal */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#transport.close();
  }
}
