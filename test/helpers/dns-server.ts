import type { ExecutionContext } from 'ava';
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

/** What one name answers; a type absent or empty answers "no records" (NODATA). */
export interface DnsRecords {
  a?: string[];
  aaaa?: string[];
  srv?: { port: number; target: string }[];
}

/** How the server answers: normally, SERVFAIL to everything, or not at all (queries time out). */
export type DnsMode = 'answer' | 'servfail' | 'silent';

const NXDOMAIN = 3;
const SERVFAIL = 2;

/**
 * An authoritative DNS server for tests: UDP on 127.0.0.1, a free port, the records a test
 * sets and changes while it runs (TTL 0, so no resolver caches them). A name without records
 * answers NXDOMAIN. Stopped when the test ends, also when it fails.
 */
export class DnsServer {
  readonly port: number;
  /** Questions received, e.g. to wait for the next resolution. */
  queries = 0;
  mode: DnsMode = 'answer';
  readonly #records = new Map<string, DnsRecords>();
  readonly #socket: dgram.Socket;
  #stopped = false;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    this.port = socket.address().port;
    socket.on('message', (msg, rinfo) => this.#answer(msg, rinfo));
  }

  static async start(t: ExecutionContext): Promise<DnsServer> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const server = new DnsServer(socket);
    t.teardown(() => server.stop());
    return server;
  }

  /** `127.0.0.1:port`, for `cluster.dns.servers`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Replaces the records of `name` (case-insensitive); `undefined` removes the name (NXDOMAIN). */
  set(name: string, records: DnsRecords | undefined): void {
    const key = name.toLowerCase();
    if (records === undefined) this.#records.delete(key);
    else this.#records.set(key, records);
  }

  /** Closes the socket: a query then gets ICMP port unreachable, or nothing. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }

  #answer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    this.queries++;
    if (this.mode === 'silent') return;
    const question = query.questions?.[0];
    const answers: dnsPacket.Answer[] = [];
    let rcode = 0;
    if (this.mode === 'servfail') rcode = SERVFAIL;
    else if (question !== undefined) {
      const records = this.#records.get(question.name.toLowerCase());
      if (records === undefined) rcode = NXDOMAIN;
      else if (question.type === 'A') for (const data of records.a ?? []) answers.push({ type: 'A', name: question.name, ttl: 0, data });
      else if (question.type === 'AAAA') for (const data of records.aaaa ?? []) answers.push({ type: 'AAAA', name: question.name, ttl: 0, data });
      else if (question.type === 'SRV') {
        for (const { port, target } of records.srv ?? [])
          answers.push({ type: 'SRV', name: question.name, ttl: 0, data: { port, target, priority: 0, weight: 0 } });
      }
    }
    const reply = dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: query.questions ?? [],
      answers,
    });
    this.#socket.send(reply, rinfo.port, rinfo.address);
  }
}
