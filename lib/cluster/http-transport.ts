import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { got, type Got } from 'got';
import { SseNodeAddressError, SsePeerError, SsePeerProtocolError, SsePeerTimeoutError } from '../core/errors.js';
import { open, seal } from './cipher.js';
import { formatPeerAddress, type Discovery, type PeerAddress } from './discovery.js';
import type { ClusterKeys } from './keys.js';
import { PROTOCOL_VERSION, type ClusterRequest, type HelloAnswer } from './messages.js';
import { bodyMatches, H_NODE, H_SIG, NonceCache, signRequest, signResponse, verifyRequest, verifyResponse } from './signature.js';
import type { ClusterTransport, RequestHandler, TransportEvents } from './transport.js';

export interface HttpTransportOptions {
  nodeId: string;
  group: string;
  keys: ClusterKeys;
  /** Encrypt payloads with AES-256-GCM. */
  encrypt: boolean;
  /** Address to listen on; undefined: every address of the host. */
  bind: string | undefined;
  /** Address announced to peers (discovery's self description, {@link HttpTransport.address}). */
  advertise: string;
  /** Why the announced address may not reach the peers: reported once through `error` at start. */
  addressWarning?: string | undefined;
  port: number;
  discovery: Discovery;
  /** How often every known address is probed, in ms. */
  healthIntervalMs: number;
  /** Probes in a row a peer must fail to be marked down. */
  healthFailures: number;
  /** Timeout of a probe, in ms. */
  timeoutMs: number;
  /** Largest request or answer body, in bytes. */
  maxBodyBytes: number;
}

const PATH = '/rpc';
/** Verified request bodies read at once; more are answered 503 (the sender's timeout decides). */
const MAX_CONCURRENT_READS = 32;

interface Candidate {
  address: PeerAddress;
  /** The node at this address while it is up. */
  peer: HelloAnswer | undefined;
  /** The node last verified at this address, kept while it is down: it is then unreachable, not gone. */
  known: HelloAnswer | undefined;
  failures: number;
  /** The hello under way to it, if any. */
  probing: Promise<void> | undefined;
}

/**
 * The cluster over HTTP: a node:http server on its own (by default random) port, and a got
 * client with keep-alive. Every request and answer is signed (HMAC-SHA256 over method, path,
 * time, nonce, node and body hash) and, by default, encrypted. A discovered address becomes
 * a peer only after it answered a signed `hello` with a valid signature: a node that does
 * not know the secret is never sent a payload.
 */
export class HttpTransport extends EventEmitter<TransportEvents> implements ClusterTransport {
  readonly nodeId: string;
  readonly #o: HttpTransportOptions;
  readonly #nonces = new NonceCache();
  readonly #candidates = new Map<string, Candidate>();
  readonly #peers = new Map<string, { answer: HelloAnswer; address: PeerAddress }>();
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  readonly #got: Got;
  #server: http.Server | undefined;
  #handler: RequestHandler | undefined;
  #self: HelloAnswer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #reading = 0;
  /** `nodeId/protocol` of nodes refused for their protocol version, reported once each. */
  readonly #refused = new Set<string>();

  constructor(options: HttpTransportOptions) {
    super();
    this.#o = options;
    this.nodeId = options.nodeId;
    this.#got = got.extend({ retry: { limit: 0 }, throwHttpErrors: false, responseType: 'buffer', agent: { http: this.#agent } });
  }

  /** Where peers reach this node's internal endpoint: the announced address, and the port (known after start). */
  get address(): PeerAddress {
    const addr = this.#server?.address() as AddressInfo | null | undefined;
    return { host: this.#o.advertise, port: addr?.port ?? this.#o.port };
  }

  /** The discovery given in the options, e.g. to update a `StaticDiscovery`'s list after start. */
  get discovery(): Discovery {
    return this.#o.discovery;
  }

  async start(handler: RequestHandler, self: HelloAnswer): Promise<void> {
    this.#handler = handler;
    this.#self = self;
    const server = http.createServer((req, res) => void this.#serve(req, res));
    server.keepAliveTimeout = 60_000;
    // A peer sends small requests at once: a slow sender is an attack, not traffic.
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // exclusive: in a worker of node:cluster the endpoint is this node's own, not a handle
      // shared through the primary (which would hand a peer's request to any worker).
      server.listen({ port: this.#o.port, host: this.#o.bind, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.emit('error', err));
    if (this.#o.addressWarning !== undefined) this.emit('error', new SseNodeAddressError(this.#o.addressWarning));
    await this.#o.discovery.start(
      { nodeId: this.nodeId, group: this.#o.group, host: this.#o.advertise, port: this.address.port },
      { found: (a) => this.#found(a), lost: (a) => this.#lost(a), error: (err) => this.emit('error', err) },
    );
    this.#timer = setInterval(() => {
      for (const c of this.#candidates.values()) void this.#probe(c);
    }, this.#o.healthIntervalMs);
    this.#timer.unref();
  }

  peers(): HelloAnswer[] {
    return [...this.#peers.values()].map((p) => p.answer);
  }

  unreachable(): HelloAnswer[] {
    const down = new Map<string, HelloAnswer>();
    for (const c of this.#candidates.values()) {
      // The same node may be up at another address (it moved): then it is not missing.
      if (c.peer === undefined && c.known !== undefined && !this.#peers.has(c.known.nodeId)) down.set(c.known.nodeId, c.known);
    }
    return [...down.values()];
  }

  async request(peerId: string, request: ClusterRequest, timeoutMs: number): Promise<unknown> {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) throw new SsePeerError('ERR_SSE_UNKNOWN_PEER', peerId, `Unknown peer ${peerId}`);
    return (await this.#call(peer.address, peerId, request, timeoutMs)).result;
  }

  // ---- client ------------------------------------------------------------------------

  /** `to`: the recipient's node id, bound into the signature; empty for the `hello` that learns it. */
  async #call(address: PeerAddress, to: string, request: ClusterRequest, timeoutMs: number): Promise<{ result: unknown; from: string }> {
    const plain = Buffer.from(JSON.stringify(request));
    // The nonce is both the signature's and the encryption's AAD: choose it first.
    const nonce = randomBytes(16).toString('hex');
    const body = this.#o.encrypt ? seal(this.#o.keys.enc, plain, nonce) : plain;
    const signed = signRequest(this.#o.keys.mac, 'POST', PATH, this.nodeId, to, body, Date.now(), nonce);
    const peer = to === '' ? formatPeerAddress(address) : to;
    let res;
    try {
      res = await this.#got.post(`http://${formatPeerAddress(address)}${PATH}`, {
        body,
        headers: { ...signed, 'content-type': 'application/octet-stream' },
        timeout: { request: timeoutMs },
      });
    } catch (err) {
      // A timeout reads the same on every transport; other network failures keep their code.
      if ((err as { code?: unknown } | null)?.code === 'ETIMEDOUT') throw new SsePeerTimeoutError(peer, timeoutMs, { cause: err });
      throw err;
    }
    const answer = res.body as unknown as Buffer;
    const from = res.headers[H_NODE];
    if (res.statusCode !== 200) throw new SsePeerError('ERR_SSE_PEER_REFUSED', peer, `Peer ${peer} answered ${res.statusCode}`);
    if (typeof from !== 'string' || !verifyResponse(this.#o.keys.mac, nonce, from, answer, res.headers[H_SIG] as string | undefined)) {
      throw new SsePeerError('ERR_SSE_PEER_UNVERIFIED', peer, `Peer ${peer} answered without a valid signature`);
    }
    const text = this.#o.encrypt ? open(this.#o.keys.enc, answer, `response:${nonce}`) : answer;
    return { result: JSON.parse(text.toString('utf8')) as unknown, from };
  }

  #found(address: PeerAddress): void {
    const key = formatPeerAddress(address);
    let c = this.#candidates.get(key);
    if (c === undefined) {
      c = { address, peer: undefined, known: undefined, failures: 0, probing: undefined };
      this.#candidates.set(key, c);
    }
    void this.#probe(c);
  }

  /** Discovery dropped the address (goodbye, removed from the list): the node there is gone, not unreachable. */
  #lost(address: PeerAddress): void {
    const key = formatPeerAddress(address);
    const c = this.#candidates.get(key);
    if (c === undefined) return;
    this.#candidates.delete(key);
    if (c.peer !== undefined) this.#downAt(c.peer.nodeId, c);
  }

  /** Asks the address to prove it knows the secret; only then is it a peer. */
  #probe(c: Candidate): Promise<void> {
    if (this.#closed) return Promise.resolve();
    c.probing ??= this.#hello(c).finally(() => (c.probing = undefined));
    return c.probing;
  }

  async #hello(c: Candidate): Promise<void> {
    try {
      const { result } = await this.#call(c.address, '', { type: 'hello' }, this.#o.timeoutMs);
      if (!this.#isCandidate(c)) return;
      const answer = result as HelloAnswer;
      c.failures = 0;
      if (answer.nodeId === this.nodeId || answer.group !== this.#o.group) return;
      if (answer.protocol !== PROTOCOL_VERSION) return this.#refuseProtocol(answer, c.address);
      // Another node answers at this address (restarted with a new id): the old one is gone from here.
      const previous = c.peer;
      if (previous !== undefined && previous.nodeId !== answer.nodeId) this.#downAt(previous.nodeId, c);
      const known = this.#peers.get(answer.nodeId);
      c.peer = answer;
      c.known = answer;
      this.#peers.set(answer.nodeId, { answer, address: c.address });
      if (known !== undefined && known.answer.qosTag !== answer.qosTag) {
        // Restarted under the same id with another durable store (a wiped disk) before it was
        // seen down: the node that owned the old store's messages is gone, a new one is up.
        this.emit('peer-down', answer.nodeId);
        this.emit('peer-up', answer);
      } else if (known === undefined) {
        this.#tellVerified();
        this.emit('peer-up', answer);
      }
    } catch {
      if (!this.#isCandidate(c)) return;
      c.failures++;
      if (c.peer !== undefined && c.failures >= this.#o.healthFailures) {
        // Down but still known (c.known stays): it is unreachable until it answers again or discovery loses it.
        const nodeId = c.peer.nodeId;
        c.peer = undefined;
        this.#downAt(nodeId, c);
      }
    }
  }

  /**
   * A verified request from a node known here but down: it is back. Its addresses are probed
   * now, not at the next health check, and a request other than a hello waits for that: this
   * node then sees it up before it answers. Else a durable send made here in between skips it
   * (a peer that is down is not asked) although it already pulled what this node held: after
   * a heal the message waited for the user's next reconnect. A hello does not wait (two nodes
   * probing each other would wait on each other).
   */
  async #heardFrom(nodeId: string, wait: boolean): Promise<void> {
    if (this.#peers.has(nodeId)) return;
    const probes: Promise<void>[] = [];
    for (const c of this.#candidates.values()) if (c.peer === undefined && c.known?.nodeId === nodeId) probes.push(this.#probe(c));
    if (wait) await Promise.all(probes);
  }

  /** A node of the group that speaks another protocol is never a peer: said once per node and version. */
  #refuseProtocol(answer: HelloAnswer, address: PeerAddress): void {
    const key = `${answer.nodeId}/${answer.protocol}`;
    if (this.#refused.has(key)) return;
    this.#refused.add(key);
    this.emit(
      'error',
      new SsePeerProtocolError(
        `Node ${answer.nodeId} at ${formatPeerAddress(address)} speaks cluster protocol ${answer.protocol}, this node ${PROTOCOL_VERSION}: ` +
          'it is not a peer. Run the same major version of koa-sse-server on every node.',
      ),
    );
  }

  /** False once discovery lost the address: a probe that was under way then changes nothing. */
  #isCandidate(c: Candidate): boolean {
    return this.#candidates.get(formatPeerAddress(c.address)) === c;
  }

  /** The node is down if this was its address: a node that moved (restarted elsewhere) is up at the new one. */
  #downAt(nodeId: string, c: Candidate): void {
    if (this.#peers.get(nodeId)?.address === c.address) this.#down(nodeId);
  }

  #down(nodeId: string): void {
    if (!this.#peers.delete(nodeId)) return;
    this.#tellVerified();
    this.emit('peer-down', nodeId);
  }

  /** The verified set changed: discovery may want to know (the workers' primary waits for it). */
  #tellVerified(): void {
    this.#o.discovery.verified?.([...this.#peers.keys()]);
  }

  // ---- server ------------------------------------------------------------------------

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // A refused request's body is never read: the connection closes after the answer.
    const refuse = (status: number, text: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(text);
    };
    if (req.method !== 'POST' || req.url !== PATH) return refuse(404, 'not found');
    // Everything is checked on the headers first (length, signature over the declared length
    // and body hash, recipient, age, nonce): without the secret, nobody makes this node buffer
    // a byte. Bodies are read only for verified requests, and only so many at once.
    const length = Number(req.headers['content-length']);
    if (req.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(length) || length < 0) return refuse(411, 'length required');
    if (length > this.#o.maxBodyBytes) return refuse(413, 'too large');
    const verdict = verifyRequest(this.#o.keys.mac, 'POST', PATH, req.headers, this.nodeId, this.#nonces);
    // Nothing about why: an attacker learns only that it failed.
    if (!verdict.ok) return refuse(401, 'unauthorized');
    if (this.#reading >= MAX_CONCURRENT_READS) return refuse(503, 'busy');
    let body: Buffer;
    this.#reading++;
    try {
      body = await readBody(req, length);
    } catch {
      return refuse(400, 'bad request');
    } finally {
      this.#reading--;
    }
    if (!bodyMatches(verdict, body)) return refuse(401, 'unauthorized');
    let request: ClusterRequest;
    try {
      const plain = this.#o.encrypt ? open(this.#o.keys.enc, body, verdict.nonce) : body;
      request = JSON.parse(plain.toString('utf8')) as ClusterRequest;
      if (request === null || typeof request !== 'object' || typeof request.type !== 'string') throw new Error('not a request');
    } catch {
      return refuse(400, 'bad request');
    }
    // Only a hello may go to an address whose node the sender does not know yet.
    if (verdict.to === '' && request.type !== 'hello') return refuse(401, 'unauthorized');
    await this.#heardFrom(verdict.nodeId, request.type !== 'hello');
    let result: unknown;
    try {
      result = request.type === 'hello' ? this.#self : await this.#handler!(verdict.nodeId, request);
    } catch (err) {
      this.emit('error', err);
      return refuse(500, 'failed');
    }
    const plain = Buffer.from(JSON.stringify(result ?? null));
    const out = this.#o.encrypt ? seal(this.#o.keys.enc, plain, `response:${verdict.nonce}`) : plain;
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      [H_NODE]: this.nodeId,
      [H_SIG]: signResponse(this.#o.keys.mac, verdict.nonce, this.nodeId, out),
    });
    res.end(out);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#o.discovery.close();
    this.#agent.destroy();
    const server = this.#server;
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

/** Reads a body of exactly `length` bytes (the declared Content-Length, already checked). */
function readBody(req: http.IncomingMessage, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(length);
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size + chunk.length > length) {
        req.destroy();
        reject(new Error('longer than declared'));
        return;
      }
      size += chunk.copy(out, size);
    });
    req.on('end', () => (size === length ? resolve(out) : reject(new Error('shorter than declared'))));
    req.on('error', reject);
  });
}
