import { EventEmitter } from 'node:events';
import type { ClusterRequest, HelloAnswer } from './messages.js';
import type { ClusterTransport, RequestHandler, TransportEvents } from './transport.js';

interface Member {
  transport: MemoryTransport;
  handler: RequestHandler;
  self: HelloAnswer;
}

/**
 * An in-process cluster network for tests: nodes join a bus, requests are structured-cloned
 * (so nothing is shared by reference, as over a wire), and a node can be cut off to test
 * failures. Not for production.
 */
export class MemoryBus {
  readonly #members = new Map<string, Member>();
  readonly #down = new Set<string>();
  /** Extra latency of every request, in ms. */
  latencyMs = 0;
  /** Sees every request before it is delivered (to count or inspect traffic in a test). */
  onRequest: ((from: string, to: string, request: ClusterRequest) => void) | undefined;

  transport(nodeId: string): MemoryTransport {
    return new MemoryTransport(this, nodeId);
  }

  /** Makes a node unreachable (it neither answers nor is told): a crash or a cable pulled. */
  cut(nodeId: string): void {
    this.#down.add(nodeId);
  }

  heal(nodeId: string): void {
    this.#down.delete(nodeId);
  }

  /** @internal */
  _join(member: Member): void {
    this.#members.set(member.transport.nodeId, member);
    for (const other of this.#members.values()) {
      if (other === member) continue;
      other.transport._peerUp(member.self);
      member.transport._peerUp(other.self);
    }
  }

  /** @internal */
  _leave(nodeId: string): void {
    this.#members.delete(nodeId);
    for (const other of this.#members.values()) other.transport._peerDown(nodeId);
  }

  /** @internal */
  async _deliver(from: string, to: string, request: ClusterRequest, timeoutMs: number): Promise<unknown> {
    this.onRequest?.(from, to, request);
    const member = this.#members.get(to);
    if (member === undefined || this.#down.has(to) || this.#down.has(from)) {
      // An unreachable node looks like one that never answers: the caller's timeout decides.
      await new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
      throw Object.assign(new Error(`peer ${to} timed out`), { code: 'ETIMEDOUT' });
    }
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    return structuredClone(await member.handler(from, structuredClone(request)));
  }
}

export class MemoryTransport extends EventEmitter<TransportEvents> implements ClusterTransport {
  readonly nodeId: string;
  readonly #bus: MemoryBus;
  readonly #peers = new Map<string, HelloAnswer>();

  constructor(bus: MemoryBus, nodeId: string) {
    super();
    this.#bus = bus;
    this.nodeId = nodeId;
  }

  async start(handler: RequestHandler, self: HelloAnswer): Promise<void> {
    this.#bus._join({ transport: this, handler, self });
  }

  peers(): HelloAnswer[] {
    return [...this.#peers.values()];
  }

  request(peerId: string, request: ClusterRequest, timeoutMs: number): Promise<unknown> {
    return this.#bus._deliver(this.nodeId, peerId, request, timeoutMs);
  }

  async close(): Promise<void> {
    this.#bus._leave(this.nodeId);
  }

  /** @internal */
  _peerUp(peer: HelloAnswer): void {
    this.#peers.set(peer.nodeId, peer);
    this.emit('peer-up', peer);
  }

  /** @internal */
  _peerDown(nodeId: string): void {
    if (this.#peers.delete(nodeId)) this.emit('peer-down', nodeId);
  }
}
