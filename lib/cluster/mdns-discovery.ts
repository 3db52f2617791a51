import type makeMdns from 'multicast-dns';
import { SsePeerProtocolError } from '../core/errors.js';
import { loadEngine } from '../core/optional-engine.js';
import { formatPeerAddress, type Discovery, type DiscoveryEvents, type PeerAddress, type SelfDescription } from './discovery.js';
import { PROTOCOL_VERSION } from './messages.js';

/** Options of mDNS discovery (passed to multicast-dns). */
export interface MdnsOptions {
  /** Interface address to send multicast on, e.g. the node's LAN address. Default: the OS's choice. */
  interface?: string;
  /** Address to bind the mDNS socket to. Default `0.0.0.0`. */
  bind?: string;
  /** Receive our own packets (needed when several nodes share one host or namespace). Default `true`. */
  loopback?: boolean;
  /** mDNS port. Default `5353`. */
  port?: number;
  /** Record TTL in seconds; a peer not heard from for this long is lost. Default `30`. */
  ttlSeconds?: number;
  /** How often to announce and query, in ms. Default `5000`. */
  intervalMs?: number;
}

export const SERVICE = '_koa-sse._tcp.local';

interface Seen {
  address: PeerAddress;
  lastSeen: number;
}

/**
 * Finds peers with mDNS: each node announces `<nodeId>._koa-sse._tcp.local` (SRV = internal
 * port, TXT = node id, group and protocol version, A = address) and queries for the others.
 * Sends a goodbye (TTL 0) on close; a peer not heard from within the TTL is lost.
 */
export class MdnsDiscovery implements Discovery {
  readonly #options: MdnsOptions;
  readonly #makeMdns: typeof makeMdns;
  #mdns: ReturnType<typeof makeMdns> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #seen = new Map<string, Seen>();
  #self: SelfDescription | undefined;
  /** `nodeId/version` of nodes refused for their protocol version. */
  readonly #refused = new Set<string>();

  constructor(options: MdnsOptions = {}) {
    this.#options = options;
    // Loaded here, not at start: a missing package fails when the hub is made.
    this.#makeMdns = loadEngine<typeof makeMdns>('multicast-dns', "discovery: 'mdns'");
  }

  start(self: SelfDescription, events: DiscoveryEvents): void {
    this.#self = self;
    const o = this.#options;
    const mdnsOptions: Record<string, unknown> = { bind: o.bind ?? '0.0.0.0', loopback: o.loopback ?? true, reuseAddr: true };
    if (o.interface !== undefined) mdnsOptions.interface = o.interface;
    if (o.port !== undefined) mdnsOptions.port = o.port;
    const mdns = this.#makeMdns(mdnsOptions as makeMdns.Options);
    this.#mdns = mdns;
    const ttl = o.ttlSeconds ?? 30;
    const instance = `${self.nodeId}.${SERVICE}`;

    mdns.on('error', () => {
      // A lost packet or a transient socket error: the next interval retries.
    });
    mdns.on('query', (query) => {
      if (query.questions.some((q) => q.name === SERVICE || q.name === instance)) this.#announce(ttl);
    });
    mdns.on('response', (response) => {
      const records = [...response.answers, ...(response.additionals ?? [])];
      const srv = new Map<string, { port: number; target: string }>();
      const txt = new Map<string, Record<string, string>>();
      const a = new Map<string, string>();
      const goodbyes = new Set<string>();
      for (const r of records) {
        if (r.type === 'SRV' && r.name.endsWith(`.${SERVICE}`)) {
          srv.set(r.name, { port: (r.data as { port: number }).port, target: (r.data as { target: string }).target });
          if (r.ttl === 0) goodbyes.add(r.name);
        } else if (r.type === 'TXT' && r.name.endsWith(`.${SERVICE}`)) {
          const fields: Record<string, string> = {};
          for (const item of ([] as (Buffer | string)[]).concat(r.data as Buffer[])) {
            const [k, ...v] = item.toString().split('=');
            if (k) fields[k] = v.join('=');
          }
          txt.set(r.name, fields);
        } else if (r.type === 'A') {
          a.set(r.name, r.data as string);
        }
      }
      for (const [name, service] of srv) {
        const fields = txt.get(name);
        if (fields === undefined || fields.group !== self.group || fields.id === self.nodeId) continue;
        const host = a.get(service.target);
        if (host === undefined) continue;
        const address = { host, port: service.port };
        if (goodbyes.has(name)) {
          if (this.#seen.delete(name)) events.lost(address);
          continue;
        }
        if (!this.#speaksOurProtocol(fields, address, events)) continue;
        const known = this.#seen.get(name);
        this.#seen.set(name, { address, lastSeen: Date.now() });
        if (known !== undefined && (known.address.host !== host || known.address.port !== address.port)) {
          // The node moved (restarted with a new address): the old address is no longer it.
          events.lost(known.address);
          events.found(address);
        } else if (known === undefined) events.found(address);
      }
    });

    const tick = (): void => {
      const now = Date.now();
      for (const [name, seen] of this.#seen) {
        if (now - seen.lastSeen > ttl * 1000) {
          this.#seen.delete(name);
          events.lost(seen.address);
        }
      }
      mdns.query({ questions: [{ name: SERVICE, type: 'PTR' }] });
      this.#announce(ttl);
    };
    tick();
    this.#timer = setInterval(tick, o.intervalMs ?? 5000);
    this.#timer.unref();
  }

  /**
   * A node announcing another major protocol version is refused here, said once per node and
   * version. `v=1` (or none) is left to the `hello`, which carries the version it speaks:
   * releases up to 0.2.0 announced `v=1` whatever they spoke.
   */
  #speaksOurProtocol(fields: Record<string, string>, address: PeerAddress, events: DiscoveryEvents): boolean {
    const major = fields.v === undefined ? undefined : parseInt(fields.v, 10);
    if (major === undefined || major === 1 || major === PROTOCOL_VERSION) return true;
    const key = `${fields.id}/${fields.v}`;
    if (!this.#refused.has(key)) {
      this.#refused.add(key);
      events.error?.(
        new SsePeerProtocolError(
          `Node ${fields.id} at ${formatPeerAddress(address)} announces cluster protocol ${fields.v}, this node speaks ${PROTOCOL_VERSION}: ` +
            'it is not a peer. Run the same major version of koa-sse-server on every node.',
        ),
      );
    }
    return false;
  }

  #announce(ttl: number): void {
    const self = this.#self;
    if (self === undefined || this.#mdns === undefined) return;
    const instance = `${self.nodeId}.${SERVICE}`;
    const target = `${self.nodeId}.koa-sse.local`;
    this.#mdns.respond({
      answers: [
        { name: SERVICE, type: 'PTR', ttl, data: instance },
        { name: instance, type: 'SRV', ttl, data: { port: self.port, target, priority: 0, weight: 0 } },
        { name: instance, type: 'TXT', ttl, data: [`id=${self.nodeId}`, `group=${self.group}`, `v=${PROTOCOL_VERSION}`] },
        { name: target, type: 'A', ttl, data: self.host },
      ],
    });
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const mdns = this.#mdns;
    if (mdns === undefined) return;
    // Answer no query from here on: an announcement sent after the goodbye (a peer's periodic
    // query crossing it) would bring us back on the peers until the TTL ends.
    mdns.removeAllListeners('query');
    mdns.removeAllListeners('response');
    this.#announce(0); // goodbye: peers drop us at once instead of after the TTL
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
    await new Promise<void>((resolve) => mdns.destroy(() => resolve()));
    this.#mdns = undefined;
  }
}
