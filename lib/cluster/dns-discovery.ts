import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { SseDiscoveryError } from '../core/errors.js';
import { formatPeerAddress, type Discovery, type DiscoveryEvents, type PeerAddress, type SelfDescription } from './discovery.js';

/** Options of DNS discovery (`cluster.dns`, with `discovery: 'dns'`). */
export interface DnsOptions {
  /**
   * The name that lists the nodes, e.g. a Kubernetes headless service
   * (`sse.default.svc.cluster.local`), or with `srv: true` its SRV name
   * (`_cluster._tcp.sse.default.svc.cluster.local`). Required.
   */
  name: string;
  /**
   * Port of the peers' internal endpoints for A/AAAA answers (all nodes of a headless
   * service listen on the same port). Not used with `srv: true`. Default: this node's own
   * internal port, so a fixed `cluster.port` is enough.
   */
  port?: number;
  /** Resolve SRV records and take each target's port from them (targets resolved to A/AAAA). Default `false`: A and AAAA. */
  srv?: boolean;
  /** How often the name is resolved, in ms; peers that left the answer are lost at the next resolution. Default `5000`. */
  intervalMs?: number;
  /**
   * DNS servers to ask, as `ip` or `ip:port` (IPv6 as `[::1]:53`), through a resolver of
   * this discovery's own. Default: the system's (`/etc/resolv.conf`).
   */
  servers?: string[];
}

/** First wait for a DNS answer, in ms; the one retry waits twice as long (c-ares), so a silent server fails a resolution in about 3 s. */
const QUERY_TIMEOUT_MS = 1000;
/** Longest interval a timer can hold (setTimeout treats more as 1 ms: a tight loop). */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

/** DNS answers meaning "no such name / no records of this type": an empty answer, not a failure. */
const EMPTY = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * Finds peers by resolving a name every `intervalMs`, as a Kubernetes headless service gives
 * them: the A and AAAA records with the cluster port, or (`srv: true`) the SRV records with
 * their own ports. This node's own address is skipped; an address that leaves the answer is
 * lost (its peer goes down at once). A resolution that fails (timeout, server failure, no
 * server) changes nothing — the last known peers stay, the health check still watches them —
 * and is reported once per failure streak (again if its cause changes) as
 * `ERR_SSE_DISCOVERY_FAILED`. "No such name" and "no records" are answers: no peers.
 */
export class DnsDiscovery implements Discovery {
  readonly #name: string;
  readonly #port: number | undefined;
  readonly #srv: boolean;
  readonly #intervalMs: number;
  readonly #resolver: dns.Resolver;
  #self: SelfDescription | undefined;
  #events: DiscoveryEvents | undefined;
  #timer: NodeJS.Timeout | undefined;
  #current = new Map<string, PeerAddress>();
  /** The code of the failure already reported, until a resolution succeeds again. */
  #failing: string | undefined;
  #resolving: Promise<void> | undefined;

  /** @throws TypeError for a missing name, a bad port, interval or server address. */
  constructor(options: DnsOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('cluster.dns must be an object with a name');
    const { name, port, srv, intervalMs, servers } = options;
    if (typeof name !== 'string' || name.trim() === '') throw new TypeError('cluster.dns.name must be a non-empty DNS name');
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new TypeError('cluster.dns.port must be 1..65535');
    if (srv !== undefined && typeof srv !== 'boolean') throw new TypeError('cluster.dns.srv must be a boolean');
    if (intervalMs !== undefined && !(typeof intervalMs === 'number' && intervalMs > 0 && intervalMs <= MAX_INTERVAL_MS)) {
      throw new TypeError(`cluster.dns.intervalMs must be a number of ms in (0, ${MAX_INTERVAL_MS}]`);
    }
    this.#name = name.trim();
    this.#port = port;
    this.#srv = srv ?? false;
    this.#intervalMs = intervalMs ?? 5000;
    // Bounded: a silent server must fail a resolution within seconds, not c-ares' default of a minute.
    this.#resolver = new dns.Resolver({ timeout: QUERY_TIMEOUT_MS, tries: 2 });
    if (servers !== undefined) {
      if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== 'string')) {
        throw new TypeError('cluster.dns.servers must be a non-empty array of "ip" or "ip:port"');
      }
      try {
        this.#resolver.setServers(servers);
      } catch (err) {
        throw new TypeError(`cluster.dns.servers: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /** The addresses of the last successful resolution (this node's own excluded), as `host:port`. */
  get peers(): string[] {
    return [...this.#current.keys()];
  }

  /**
   * Whether answers carry their ports (SRV) or an explicit `port` is set: else the nodes must share a fixed port.
   * @internal
   */
  get hasPort(): boolean {
    return this.#srv || this.#port !== undefined;
  }

  start(self: SelfDescription, events: DiscoveryEvents): void {
    this.#self = self;
    this.#events = events;
    this.#schedule(0);
  }

  /** Resolves now instead of at the next interval; answers when the resolution is over. */
  async refresh(): Promise<void> {
    if (this.#events === undefined) return;
    if (this.#resolving === undefined) {
      clearTimeout(this.#timer);
      await this.#run();
    } else {
      await this.#resolving;
    }
  }

  async close(): Promise<void> {
    this.#events = undefined;
    clearTimeout(this.#timer);
    this.#resolver.cancel();
    await this.#resolving;
  }

  /** One resolution at a time: the next is scheduled when this one is over, so a slow server never piles them up. */
  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => void this.#run(), delayMs);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const done = this.#resolveOnce().finally(() => {
      this.#resolving = undefined;
      if (this.#events !== undefined) this.#schedule(this.#intervalMs);
    });
    this.#resolving = done;
    await done;
  }

  async #resolveOnce(): Promise<void> {
    let next: Map<string, PeerAddress>;
    try {
      next = await this.#lookUp();
    } catch (err) {
      const events = this.#events;
      if (events === undefined) return;
      const code = (err as { code?: unknown }).code;
      const key = typeof code === 'string' ? code : 'unknown';
      if (this.#failing === key) return;
      this.#failing = key;
      events.error?.(
        new SseDiscoveryError(`DNS discovery of ${this.#name} failed (${key}); keeping the ${this.#current.size} known peer(s)`, { cause: err }),
      );
      return;
    }
    const events = this.#events;
    if (events === undefined) return;
    this.#failing = undefined;
    const previous = this.#current;
    this.#current = next;
    for (const [key, address] of previous) if (!next.has(key)) events.lost(address);
    for (const [key, address] of next) if (!previous.has(key)) events.found(address);
  }

  /** The peers the name gives now; throws when the DNS did not answer. */
  async #lookUp(): Promise<Map<string, PeerAddress>> {
    const found = new Map<string, PeerAddress>();
    const add = (host: string, port: number): void => {
      const self = this.#self;
      if (self !== undefined && host === self.host && port === self.port) return;
      const address = { host, port };
      found.set(formatPeerAddress(address), address);
    };
    if (this.#srv) {
      const records = await this.#empty(this.#resolver.resolveSrv(this.#name));
      const hosts = await Promise.all(records.map((r) => this.#addresses(r.name)));
      records.forEach((r, i) => {
        for (const host of hosts[i]!) add(host, r.port);
      });
    } else {
      const port = this.#port ?? this.#self!.port;
      for (const host of await this.#addresses(this.#name)) add(host, port);
    }
    return found;
  }

  /** A and AAAA of `name` (an IP literal stands for itself). */
  async #addresses(name: string): Promise<string[]> {
    if (isIP(name) !== 0) return [name];
    const [v4, v6] = await Promise.all([this.#empty(this.#resolver.resolve4(name)), this.#empty(this.#resolver.resolve6(name))]);
    return [...v4, ...v6];
  }

  async #empty<T>(query: Promise<T[]>): Promise<T[]> {
    try {
      return await query;
    } catch (err) {
      if (EMPTY.has((err as { code?: string }).code ?? '')) return [];
      throw err;
    }
  }
}
