/** Where a peer's internal endpoint listens. */
export interface PeerAddress {
  host: string;
  port: number;
}

/** What a node tells discovery about itself. Never a secret: anyone on the LAN may see it. */
export interface SelfDescription {
  nodeId: string;
  group: string;
  host: string;
  port: number;
}

/** Callbacks of a discovery mechanism. A found address is only a candidate: it must still prove the secret. */
export interface DiscoveryEvents {
  found(address: PeerAddress): void;
  lost(address: PeerAddress): void;
  /** A failure to report (e.g. the DNS did not answer); the known addresses stay. The hub re-emits it as `error`. */
  error?(err: unknown): void;
}

/** How nodes find candidate peers: a static list, mDNS, or your own (e.g. Redis) later. */
export interface Discovery {
  start(self: SelfDescription, events: DiscoveryEvents): Promise<void> | void;
  close(): Promise<void> | void;
  /**
   * Told, after each change, the node ids of the peers this node has verified and now sends
   * to (the HTTP transport calls it; so does the Redis engine's, with the live peers it
   * counts). Optional: `PrimaryDiscovery` reports them to the primary of `startWorkers`, whose
   * `pool.ready()` waits until every worker counts every other.
   */
  verified?(nodeIds: readonly string[]): void;
}

/** Parses `host:port` (IPv6 as `[::1]:port`). */
export function parsePeerAddress(text: string): PeerAddress {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\s[\]]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new TypeError(`A peer must be "host:port", got ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

/**
 * A list of peers, e.g. from configuration. Down peers are retried by the health check.
 * The list may be replaced at any time with {@link StaticDiscovery.setPeers}, before or after
 * start: nodes that listen on port 0 learn each other's addresses only once they listen.
 */
export class StaticDiscovery implements Discovery {
  #peers: Map<string, PeerAddress>;
  #self: SelfDescription | undefined;
  #events: DiscoveryEvents | undefined;

  /** @param peers `host:port` of each peer (IPv6 as `[::1]:port`). Default `[]`. */
  constructor(peers: readonly string[] = []) {
    this.#peers = parseList(peers, 'cluster.peers');
  }

  /** The current list, as `host:port`. */
  get peers(): string[] {
    return [...this.#peers.values()].map(formatPeerAddress);
  }

  /**
   * Replaces the list. Once started, addresses new to the list are `found` (probed at once)
   * and addresses no longer in it are `lost` (a peer there goes down); before start the list
   * is only stored. This node's own address is skipped, so the same list fits every node.
   * @throws TypeError if `peers` is not an array of `host:port`; the list is then unchanged.
   */
  setPeers(peers: readonly string[]): void {
    const next = parseList(peers, 'peers');
    const previous = this.#peers;
    this.#peers = next;
    const events = this.#events;
    if (events === undefined) return;
    for (const [key, address] of previous) if (!next.has(key) && !this.#isSelf(address)) events.lost(address);
    for (const [key, address] of next) if (!previous.has(key) && !this.#isSelf(address)) events.found(address);
  }

  start(self: SelfDescription, events: DiscoveryEvents): void {
    this.#self = self;
    this.#events = events;
    for (const peer of this.#peers.values()) if (!this.#isSelf(peer)) events.found(peer);
  }

  close(): void {
    this.#events = undefined;
  }

  #isSelf(peer: PeerAddress): boolean {
    return peer.host === this.#self?.host && peer.port === this.#self.port;
  }
}

/** `host:port`, the inverse of {@link parsePeerAddress}. */
export function formatPeerAddress({ host, port }: PeerAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses a whole list first, so that a bad entry changes nothing; duplicates count once. */
function parseList(peers: readonly string[], name: string): Map<string, PeerAddress> {
  if (!Array.isArray(peers)) throw new TypeError(`${name} must be an array of "host:port"`);
  return new Map(
    (peers as readonly unknown[]).map((text) => {
      const address = parsePeerAddress(String(text));
      return [formatPeerAddress(address), address];
    }),
  );
}
