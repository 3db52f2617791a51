import { EventEmitter } from 'node:events';
import { SsePeerTimeoutError } from '../core/errors.js';
import type { ClusterRequest, HelloAnswer } from './messages.js';
import type { ClusterTransport, RequestHandler, TransportEvents } from './transport.js';

interface Member {
  transport: MemoryTransport;
  handler: RequestHandler;
  self: HelloAnswer;
}

/**
 * An in-process cluster network for tests: nodes join a bus, requests are structured-cloned
 * (so nothing is shared by reference, as over a wire), and a node can be paused or cut off to
 * test failures. A request not answered within its timeout rejects with `ETIMEDOUT`, as over
 * HTTP, even if the node handles it later. Not for production.
 */
export class MemoryBus {
  readonly #members = new Map<string, Member>();
  readonly #cut = new Set<string>();
  /** Paused nodes, and the release of the requests held for them. */
  readonly #stalled = new Map<string, { resumed: Promise<void>; resume: () => void }>();
  /** Extra latency of every request, in ms. */
  latencyMs = 0;
  /** Sees every request before it is delivered (to count or inspect traffic in a test). */
  onRequest: ((from: string, to: string, request: ClusterRequest) => void) | undefined;

  transport(nodeId: string): MemoryTransport {
    return new MemoryTransport(this, nodeId);
  }

  /**
   * Pauses a node (a process stopped with SIGSTOP): it neither answers nor sends, and its
   * peers are not told, so they keep asking it and time out. Requests sent to it meanwhile
   * are held, like bytes in a socket buffer, and handled when it is healed: late.
   */
  stall(nodeId: string): void {
    if (this.#stalled.has(nodeId)) return;
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    this.#stalled.set(nodeId, { resumed, resume });
  }

  /**
   * Cuts a node off (a crash, a cable pulled) once the others noticed: it and every other
   * node see each other go down (`peer-down`) and stay known as unreachable until healed.
   * Requests between it and the others time out and are never handled.
   */
  cut(nodeId: string): void {
    if (this.#cut.has(nodeId)) return;
    this.#cut.add(nodeId);
    const member = this.#members.get(nodeId);
    if (member === undefined) return;
    for (const other of this.#members.values()) {
      if (other === member) continue;
      other.transport._peerDown(nodeId, false);
      member.transport._peerDown(other.transport.nodeId, false);
    }
  }

  /** Ends a pause or a cut: held requests are handled now; a cut node and the others see each other up again. */
  heal(nodeId: string): void {
    const stalled = this.#stalled.get(nodeId);
    this.#stalled.delete(nodeId);
    stalled?.resume();
    if (!this.#cut.delete(nodeId)) return;
    const member = this.#members.get(nodeId);
    if (member !== undefined) this.#connect(member);
  }

  /** @internal */
  _join(member: Member): void {
    this.#members.set(member.transport.nodeId, member);
    this.#connect(member);
  }

  /** @internal */
  _leave(nodeId: string): void {
    this.#members.delete(nodeId);
    for (const other of this.#members.values()) other.transport._peerDown(nodeId, true);
  }

  /** @internal */
  async _deliver(from: string, to: string, request: ClusterRequest, timeoutMs: number): Promise<unknown> {
    this.onRequest?.(from, to, request);
    const member = this.#members.get(to);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      // Unref'd: a request to a node that never answers must not keep a test process alive.
      timer = setTimeout(() => reject(new SsePeerTimeoutError(to, timeoutMs)), timeoutMs).unref();
    });
    // An unreachable node looks like one that never answers: the caller's timeout decides.
    if (member === undefined || this.#cut.has(to) || this.#cut.has(from) || this.#stalled.has(from)) return timeout;
    const copy = structuredClone(request);
    const answer = (async () => {
      const stalled = this.#stalled.get(to);
      if (stalled !== undefined) await stalled.resumed;
      if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
      return structuredClone(await member.handler(from, copy));
    })();
    try {
      // An answer (or failure) after the timeout is dropped: race() has handled it.
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Makes a member and every other one that is not cut off peers of each other. */
  #connect(member: Member): void {
    if (this.#cut.has(member.transport.nodeId)) return;
    for (const other of this.#members.values()) {
      if (other === member || this.#cut.has(other.transport.nodeId)) continue;
      other.transport._peerUp(member.self);
      member.transport._peerUp(other.self);
    }
  }
}

export class MemoryTransport extends EventEmitter<TransportEvents> implements ClusterTransport {
  readonly nodeId: string;
  readonly #bus: MemoryBus;
  readonly #peers = new Map<string, HelloAnswer>();
  /** Peers cut off: known, but down until healed. */
  readonly #unreachable = new Map<string, HelloAnswer>();

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

  unreachable(): HelloAnswer[] {
    return [...this.#unreachable.values()];
  }

  request(peerId: string, request: ClusterRequest, timeoutMs: number): Promise<unknown> {
    return this.#bus._deliver(this.nodeId, peerId, request, timeoutMs);
  }

  async close(): Promise<void> {
    this.#bus._leave(this.nodeId);
  }

  /** @internal */
  _peerUp(peer: HelloAnswer): void {
    this.#unreachable.delete(peer.nodeId);
    const known = this.#peers.has(peer.nodeId);
    this.#peers.set(peer.nodeId, peer);
    if (!known) this.emit('peer-up', peer);
  }

  /** @internal `gone`: it left the bus; else it is cut off and stays known. */
  _peerDown(nodeId: string, gone: boolean): void {
    const peer = this.#peers.get(nodeId) ?? this.#unreachable.get(nodeId);
    if (peer === undefined) return;
    if (gone) this.#unreachable.delete(nodeId);
    else this.#unreachable.set(nodeId, peer);
    if (this.#peers.delete(nodeId)) this.emit('peer-down', nodeId);
  }
}
