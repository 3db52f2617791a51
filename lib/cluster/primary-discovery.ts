import { formatPeerAddress, type Discovery, type DiscoveryEvents, type PeerAddress, type SelfDescription } from './discovery.js';

/**
 * A node of one worker, as a worker tells the primary and the primary tells the workers. A
 * node of the Redis engine has no address (host `''`, port 0): it is listed so that the
 * primary knows which peers it counts.
 */
export interface WorkerNode extends PeerAddress {
  nodeId: string;
}

/**
 * What a worker's discovery sends the primary: its node is up at this address, or gone; or
 * which peers its node has verified (and sends to) since the group's list `seq` reached it.
 */
export type WorkerNodeMessage =
  { sse: 'worker-node'; group: string; node: WorkerNode } | { sse: 'worker-node-gone'; group: string; nodeId: string } | WorkerVerifiedMessage;

/**
 * A worker's node has verified `peers` (node ids; the primary compares them with its list),
 * having seen the group's list `seq`: a peer verified before that list (a worker since
 * replaced under the same node id) was dropped by an earlier list, so these are the ones the
 * list names now.
 */
export interface WorkerVerifiedMessage {
  sse: 'worker-verified';
  group: string;
  nodeId: string;
  seq: number;
  peers: string[];
}

/** What the primary sends every worker when a group's nodes change: all of them, this worker's own included. */
export interface WorkerPeersMessage {
  sse: 'worker-peers';
  group: string;
  nodes: WorkerNode[];
  /** Grows with each list the primary sends: a worker's {@link WorkerVerifiedMessage} says which list it answers. */
  seq: number;
}

/** The IPC channel to the primary: `process` in a worker of Node's `cluster` module. */
export interface PrimaryChannel {
  /** With a callback, a failure (the primary is gone) goes to it instead of an `error` event. */
  send?: ((message: WorkerNodeMessage, callback: (err: Error | null) => void) => unknown) | undefined;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** Whether an IPC message is the primary's list of a group's nodes. */
export function isWorkerPeersMessage(message: unknown): message is WorkerPeersMessage {
  const m = message as Partial<WorkerPeersMessage> | null;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.sse === 'worker-peers' &&
    typeof m.group === 'string' &&
    Array.isArray(m.nodes) &&
    typeof m.seq === 'number'
  );
}

/** Whether an IPC message is a worker's news about its node. */
export function isWorkerNodeMessage(message: unknown): message is WorkerNodeMessage {
  const m = message as Partial<WorkerNodeMessage> | null;
  if (typeof m !== 'object' || m === null || typeof m.group !== 'string') return false;
  if (m.sse === 'worker-node-gone') return typeof (m as { nodeId?: unknown }).nodeId === 'string';
  if (m.sse === 'worker-verified') {
    const v = m as Partial<WorkerVerifiedMessage>;
    return typeof v.nodeId === 'string' && typeof v.seq === 'number' && Array.isArray(v.peers) && v.peers.every((p) => typeof p === 'string');
  }
  if (m.sse !== 'worker-node') return false;
  const node = (m as { node?: Partial<WorkerNode> }).node;
  return typeof node?.host === 'string' && typeof node.port === 'number' && typeof node.nodeId === 'string';
}

/** A send to a primary that is gone fails; the worker is closing then anyway. */
const ignore = (): void => {};

/**
 * Peers learnt from the primary of Node's `cluster` module over IPC: the other workers of
 * this machine (see `startWorkers`). Each worker tells the primary where its node listens;
 * the primary sends every worker the group's list whenever it changes (a worker started,
 * closed, crashed). No port list, no multicast. A worker that dies is `lost` at once, so the
 * others stop counting it; its replacement is `found` at its new address. The node tells the
 * primary which peers it has verified (the transport calls {@link PrimaryDiscovery.verified}),
 * so that `pool.ready()` resolves only once every worker sends to every other. A node of the
 * Redis engine reports to it the same way; what it finds is not used there.
 */
export class PrimaryDiscovery implements Discovery {
  readonly #channel: PrimaryChannel;
  #self: SelfDescription | undefined;
  #events: DiscoveryEvents | undefined;
  #known = new Map<string, PeerAddress>();
  /** The last list's `seq` (-1: none yet), and the peers the transport verified. */
  #seq = -1;
  #verified: readonly string[] = [];
  /** What was last told the primary, so that a health check that changes nothing sends nothing. */
  #told = '';
  #updating = false;
  readonly #settled: Promise<void>;
  #settle!: () => void;
  readonly #onMessage = (message: unknown): void => {
    if (isWorkerPeersMessage(message) && message.group === this.#self?.group) this.#update(message.nodes, message.seq);
  };

  /** @param channel the IPC channel to the primary. Default `process` (a worker's). */
  constructor(channel: PrimaryChannel = process) {
    this.#channel = channel;
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
  }

  /**
   * @internal Resolves once this discovery started (its node is told to the primary) or
   * closed: a worker says it is ready only after that, so the primary knows its nodes then.
   */
  get settled(): Promise<void> {
    return this.#settled;
  }

  start(self: SelfDescription, events: DiscoveryEvents): void {
    if (typeof this.#channel.send !== 'function') {
      throw new TypeError('PrimaryDiscovery runs in a worker of node:cluster (started by startWorkers): this process has no IPC channel');
    }
    this.#self = self;
    this.#events = events;
    this.#channel.on('message', this.#onMessage);
    this.#channel.send({ sse: 'worker-node', group: self.group, node: { nodeId: self.nodeId, host: self.host, port: self.port } }, ignore);
    this.#settle();
  }

  /** Tells the primary which peers the node verified (the transport calls it after each change). */
  verified(nodeIds: readonly string[]): void {
    this.#verified = [...nodeIds].sort();
    if (!this.#updating) this.#tell();
  }

  close(): void {
    const self = this.#self;
    this.#channel.off('message', this.#onMessage);
    this.#events = undefined;
    this.#settle();
    if (self === undefined) return;
    // The primary may be gone already (it shut down first): then nobody needs to know.
    try {
      this.#channel.send?.({ sse: 'worker-node-gone', group: self.group, nodeId: self.nodeId }, ignore);
    } catch {
      // The IPC channel is closed.
    }
  }

  #update(nodes: readonly WorkerNode[], seq: number): void {
    const events = this.#events;
    const self = this.#self;
    if (events === undefined || self === undefined) return;
    const next = new Map<string, PeerAddress>();
    for (const node of nodes) {
      if (node.nodeId === self.nodeId) continue;
      const address = { host: node.host, port: node.port };
      next.set(formatPeerAddress(address), address);
    }
    const previous = this.#known;
    this.#known = next;
    // Losses take effect at once (the transport drops those peers before this returns): the
    // answer to this list names no node the list left out, whoever replaces it later.
    this.#updating = true;
    try {
      for (const [key, address] of previous) if (!next.has(key)) events.lost(address);
      for (const [key, address] of next) if (!previous.has(key)) events.found(address);
    } finally {
      this.#updating = false;
    }
    this.#seq = seq;
    this.#tell();
  }

  /** Says which peers are verified as of the last list, once the node has seen one. */
  #tell(): void {
    const self = this.#self;
    if (self === undefined || this.#events === undefined || this.#seq < 0) return;
    const told = `${this.#seq} ${this.#verified.join(' ')}`;
    if (told === this.#told) return;
    this.#told = told;
    try {
      this.#channel.send?.({ sse: 'worker-verified', group: self.group, nodeId: self.nodeId, seq: this.#seq, peers: [...this.#verified] }, ignore);
    } catch {
      // The IPC channel is closed: the worker is closing.
    }
  }
}

/**
 * Several discoveries as one: an address is found when the first of them finds it and lost
 * when the last of them loses it (a worker's siblings come from the primary and, in a static
 * list of the whole LAN, also from the list).
 */
export class CombinedDiscovery implements Discovery {
  readonly #parts: readonly Discovery[];
  readonly #count = new Map<string, number>();

  constructor(parts: readonly Discovery[]) {
    this.#parts = parts;
  }

  /** The discoveries combined, in the order given. */
  get parts(): readonly Discovery[] {
    return this.#parts;
  }

  async start(self: SelfDescription, events: DiscoveryEvents): Promise<void> {
    const counted: DiscoveryEvents = {
      found: (address) => {
        const key = formatPeerAddress(address);
        const n = this.#count.get(key) ?? 0;
        this.#count.set(key, n + 1);
        if (n === 0) events.found(address);
      },
      lost: (address) => {
        const key = formatPeerAddress(address);
        const n = this.#count.get(key) ?? 0;
        if (n === 0) return;
        if (n === 1) {
          this.#count.delete(key);
          events.lost(address);
        } else this.#count.set(key, n - 1);
      },
    };
    if (events.error !== undefined) counted.error = (err) => events.error?.(err);
    for (const part of this.#parts) await part.start(self, counted);
  }

  /** Tells every part that takes it (the primary's) which peers the node verified. */
  verified(nodeIds: readonly string[]): void {
    for (const part of this.#parts) part.verified?.(nodeIds);
  }

  async close(): Promise<void> {
    for (const part of this.#parts) await part.close();
    this.#count.clear();
  }
}
