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
}

/** How nodes find candidate peers: a static list, mDNS, or your own (e.g. Redis) later. */
export interface Discovery {
  start(self: SelfDescription, events: DiscoveryEvents): Promise<void> | void;
  close(): Promise<void> | void;
}

/** Parses `host:port` (IPv6 as `[::1]:port`). */
export function parsePeerAddress(text: string): PeerAddress {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\s[\]]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new TypeError(`A peer must be "host:port", got ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

/** A fixed list of peers, e.g. from configuration. Down peers are retried by the health check. */
export class StaticDiscovery implements Discovery {
  readonly #peers: PeerAddress[];

  constructor(peers: readonly string[]) {
    if (!Array.isArray(peers)) throw new TypeError('cluster.peers must be an array of "host:port"');
    this.#peers = peers.map(parsePeerAddress);
  }

  start(self: SelfDescription, events: DiscoveryEvents): void {
    for (const peer of this.#peers) {
      if (peer.host === self.host && peer.port === self.port) continue;
      events.found(peer);
    }
  }

  close(): void {}
}
