import { EventEmitter } from 'node:events';
import { SsePeerError, SsePeerTimeoutError, SseRedisUnavailableError } from '../core/errors.js';
import type { RecoveryWindow } from '../local/recovery-window.js';
import { connectRedis, isRedisCluster, openRedis, redisFailure, type RedisClient } from '../redis/redis-connection.js';
import type { RedisSource } from '../redis/redis-source.js';
import { RedisWriteQueue } from '../redis/redis-write-queue.js';
import type { Discovery } from './discovery.js';
import type { ClusterRequest, HelloAnswer, SendItem, SendRequest } from './messages.js';
import { RedisDirectory } from './redis-directory.js';
import { isEnvelope, type Envelope } from './redis-envelope.js';
import { BEAT, COLLECT, membershipKeys, type MembershipKeys } from './redis-membership.js';
import { RedisWindowLog } from './redis-window.js';
import type { ClusterTransport, RequestHandler, TransportEvents } from './transport.js';

/** Settings of {@link RedisTransport}, resolved from the `cluster` option. */
export interface RedisTransportOptions {
  nodeId: string;
  redis: RedisSource;
  /** Prefix of every key and channel; nodes with the same prefix form one cluster. */
  prefix: string;
  /** How often this node beats (and reads the others' beats), in ms. */
  heartbeatMs: number;
  /** A node whose last beat is older than this is dead: dropped, its directory entries removed. */
  nodeTtlMs: number;
  /** Longest wait for one Redis command, in ms (a stalled server fails calls after it). */
  commandTimeoutMs: number;
  /**
   * Told this node when it starts (with no address: host `''`, port 0; group `redis:<prefix>`)
   * and, after each change, the peers it counts ({@link Discovery.verified}), as the HTTP
   * transport tells its discovery: the primary of `startWorkers` waits for them
   * (`PrimaryDiscovery`). What it finds is not used: the nodes find each other in Redis.
   */
  discovery?: Discovery;
}

interface Waiting {
  /** Only this node's answer settles it. */
  peerId: string;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

/** A send's recovery-window items (ordinary, with a window id), or `undefined` when it has none. */
function windowItems(request: SendRequest): SendItem[] | undefined {
  if (!Array.isArray(request.items)) return undefined;
  const items = request.items.filter((item) => item?.wid !== undefined && item.id === undefined);
  return items.length > 0 ? items : undefined;
}

function timedOut(peerId: string, timeoutMs: number): Error {
  return new SsePeerTimeoutError(peerId, timeoutMs);
}

const ignore = (): void => undefined;

function notAPeer(peerId: string): Error {
  return new SsePeerError('ERR_SSE_PEER_DOWN', peerId, `Peer ${peerId} is not up`);
}

/**
 * Cluster transport over Redis pub/sub: nodes need no address, port or secret of each other,
 * only the same Redis and prefix. A request to a peer is published on its channel, its
 * answer comes back on the asker's channel under the request id; a fan-out to all peers is
 * one message on the broadcast channel (`to` names who must answer it; redis-envelope.ts).
 * Membership is a sorted set of node ids scored by their last beat (redis-membership.ts): a
 * node that stops beating (SIGKILL) is dropped by the others after `nodeTtlMs`, and its
 * directory entries with it.
 *
 * Plain PUBLISH, not sharded SPUBLISH: on one Redis (or Sentinel) they cost the same, and
 * the broadcast channel, which carries most of the traffic, reaches every node anyway. On a
 * Redis Cluster plain PUBLISH is relayed to every shard; that is the price of one broadcast.
 *
 * Redis down, restarting or stalled: the peers become unreachable (known but down), so a
 * cluster send or query counts them failed at once instead of waiting; the local node keeps
 * delivering. When Redis answers again the node beats, rewrites its directory entries,
 * (re)subscribes and sees its peers up again by itself.
 */
export class RedisTransport extends EventEmitter<TransportEvents> implements ClusterTransport {
  readonly nodeId: string;
  readonly directory: RedisDirectory;
  readonly #options: RedisTransportOptions;
  /** The membership's sorted set of beats and hash of hellos. */
  readonly #keys: MembershipKeys;
  readonly #pub: RedisClient;
  readonly #sub: RedisClient;
  /** The window's XADDs and the requests' PUBLISHes, in order, written at once (past the auto-pipeline). */
  readonly #writes: RedisWriteQueue;
  /** How this node's own published envelopes begin (`{"from":"<id>",`). */
  readonly #ownPrefix: Buffer;
  readonly #peers = new Map<string, HelloAnswer>();
  readonly #unreachable = new Map<string, HelloAnswer>();
  readonly #waiting = new Map<number, Waiting>();
  #handler: RequestHandler | undefined;
  #self: HelloAnswer | undefined;
  #nextId = 1;
  /** The recovery window's Stream, when the hub asked for it (closed with the transport). */
  #windowLog: RedisWindowLog | undefined;
  #timer: NodeJS.Timeout | undefined;
  #beating = false;
  #subscribed = false;
  /** Redis failed since the last good beat; when it came back (peers not seen yet are kept meanwhile). */
  #down = false;
  #recoveredAt: number | undefined;
  #closed = false;

  constructor(options: RedisTransportOptions) {
    super();
    this.nodeId = options.nodeId;
    this.#options = options;
    this.#keys = membershipKeys(options.prefix);
    this.#pub = openRedis(options.redis, options.commandTimeoutMs);
    this.#sub = openRedis(options.redis, options.commandTimeoutMs);
    this.#writes = new RedisWriteQueue(this.#pub);
    this.#ownPrefix = Buffer.from(`{"from":${JSON.stringify(options.nodeId)},`);
    // ioredis reports each failed reconnect as an error; the beat reports what matters (peers down).
    this.#pub.on('error', () => undefined);
    this.#sub.on('error', () => undefined);
    this.#pub.on('close', () => this.#redisDown());
    this.#sub.on('close', () => this.#redisDown());
    this.#sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.#onMessage(message));
    // The peers delete a dead node's keys and never read them meanwhile; the TTL only clears
    // what a cluster that died whole left. Long, so that a node busy for a while (a storm on a
    // loaded machine) does not lose some of its keys before its next beat renews them.
    const keyTtlMs = Math.max(10 * options.nodeTtlMs, 60_000);
    this.directory = new RedisDirectory(this.#pub, options.prefix, keyTtlMs, (err) => this.emit('error', err));
  }

  get #allChannel(): string {
    return `${this.#options.prefix}:all`;
  }

  #channelOf(nodeId: string): string {
    return `${this.#options.prefix}:to:${nodeId}`;
  }

  /** The recovery window as a Redis Stream shared by the cluster, written on the connection that publishes sends. */
  windowLog(window: RecoveryWindow, report: (err: unknown) => void): RedisWindowLog {
    this.#windowLog = new RedisWindowLog(this.#pub, this.#writes, this.#options.prefix, window, report);
    return this.#windowLog;
  }

  /**
   * Connects, subscribes and beats once. Rejects with `ERR_SSE_REDIS_UNAVAILABLE` when Redis
   * is not reachable within 5 × `commandTimeoutMs` (at least 5 s), but keeps trying: the node
   * joins by itself once Redis is up, and serves locally meanwhile.
   */
  async start(handler: RequestHandler, self: HelloAnswer): Promise<void> {
    this.#handler = handler;
    this.#self = self;
    this.#timer = setInterval(() => void this.#beat(), this.#options.heartbeatMs);
    this.#timer.unref();
    // Before Redis answers: with Redis down at start the node is known to the primary all the
    // same (its worker serves), and counts its peers once it joins them.
    const discovery = this.#options.discovery;
    if (discovery !== undefined) {
      await discovery.start({ nodeId: this.nodeId, group: `redis:${this.#options.prefix}`, host: '', port: 0 }, { found: ignore, lost: ignore });
      this.#tellPeers();
    }
    const wait = Math.max(this.#options.commandTimeoutMs, 1000) * 5;
    await Promise.all([connectRedis(this.#pub, wait), connectRedis(this.#sub, wait)]);
    await this.#beat();
    if (!this.#subscribed) throw new SseRedisUnavailableError('cluster start: could not subscribe to the node channels');
  }

  peers(): HelloAnswer[] {
    return [...this.#peers.values()];
  }

  unreachable(): HelloAnswer[] {
    return [...this.#unreachable.values()];
  }

  request(peerId: string, request: ClusterRequest, timeoutMs: number): Promise<unknown> {
    if (!this.#peers.has(peerId)) return Promise.reject(notAPeer(peerId));
    const [answer] = this.#send(this.#channelOf(peerId), [peerId], request, timeoutMs, undefined);
    return answer!;
  }

  /** A `send` goes on the broadcast channel: a node not in `to` writes its window items unasked. */
  readonly sendsReachAll = true;

  broadcast(peerIds: string[], request: ClusterRequest, timeoutMs: number): Promise<unknown>[] {
    // A send always on the broadcast channel, for the nodes this one does not see now (see #onMessage).
    const spread = request.type === 'send' && windowItems(request) !== undefined;
    if (peerIds.length === 0 && !spread) return [];
    if (peerIds.length === 1 && !spread) return [this.request(peerIds[0]!, request, timeoutMs)];
    return this.#send(this.#allChannel, peerIds, request, timeoutMs, peerIds);
  }

  notify(peerIds: string[], request: ClusterRequest): void {
    const live = peerIds.filter((id) => this.#peers.has(id));
    const spread = request.type === 'send' && windowItems(request) !== undefined;
    if ((live.length === 0 && !spread) || this.#closed || this.#pub.status !== 'ready') return;
    const envelope: Envelope = { from: this.nodeId, k: 'n', req: request };
    if (live.length > 1 || spread) envelope.to = live;
    const channel = live.length === 1 && !spread ? this.#channelOf(live[0]!) : this.#allChannel;
    // Nobody waits for it: a failure to publish is a send that counted nothing anyway.
    this.#publish(channel, envelope).catch(() => undefined);
  }

  /** Publishes one request awaited from each of `peerIds`; one promise per peer. */
  #send(channel: string, peerIds: string[], request: ClusterRequest, timeoutMs: number, to: string[] | undefined): Promise<unknown>[] {
    if (this.#closed || this.#pub.status !== 'ready') {
      const err = new SseRedisUnavailableError('cluster request: Redis is not connected');
      return peerIds.map(() => Promise.reject(err));
    }
    const ids: number[] = [];
    const answers = peerIds.map((peerId) => {
      const id = this.#nextId++;
      ids.push(id);
      return new Promise<unknown>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiting.delete(id);
          reject(timedOut(peerId, timeoutMs));
        }, timeoutMs);
        this.#waiting.set(id, { peerId, resolve, reject, timer });
      });
    });
    // Answer ids: the first, and each peer's by its position in `to` (id + index).
    // No peer asked (a send spread to the nodes not seen): an id nobody waits for.
    const envelope: Envelope = { from: this.nodeId, k: 'q', id: ids[0] ?? this.#nextId, req: request };
    if (to !== undefined) envelope.to = to;
    this.#publish(channel, envelope).then(
      (receivers) => {
        // Nobody subscribed (the peer died since its last beat): fail now, not after the timeout.
        // Not on a Redis Cluster, where PUBLISH counts only the subscribers of the shard it ran on.
        if (receivers === 0 && to === undefined && !isRedisCluster(this.#pub)) this.#settle(ids[0]!, false, notAPeer(peerIds[0]!));
      },
      (err: unknown) => {
        const failure = redisFailure(err, 'cluster request');
        for (const id of ids) this.#settle(id, false, failure);
      },
    );
    return answers;
  }

  /**
   * Publishes behind this node's queued window XADDs, in the same socket write. The envelope
   * is built with `from` first: its JSON starts with {@link RedisTransport.#ownPrefix}.
   */
  #publish(channel: string, envelope: Envelope): Promise<unknown> {
    const reply = this.#writes.add('publish', [channel, JSON.stringify(envelope)]);
    this.#writes.flush();
    return reply;
  }

  #settle(id: number, ok: boolean, value: unknown, from?: string): void {
    const waiting = this.#waiting.get(id);
    if (waiting === undefined || (from !== undefined && from !== waiting.peerId)) return;
    this.#waiting.delete(id);
    clearTimeout(waiting.timer);
    if (ok) waiting.resolve(value);
    else waiting.reject(value);
  }

  #onMessage(raw: Buffer): void {
    // This node's own sends and requests come back on the broadcast channel: dropped unparsed
    // (they start with `from`, see #publish), which spares the sender a JSON.parse of each.
    const own = this.#ownPrefix;
    if (raw.length > own.length && raw.compare(own, 0, own.length, 0, own.length) === 0) return;
    let message: unknown;
    try {
      message = JSON.parse(raw.toString('utf8'));
    } catch {
      return;
    }
    // Whatever can publish on this Redis reaches here. A malformed envelope is dropped: thrown
    // from the subscriber's event it would take the process down (`to` of a number did).
    if (!isEnvelope(message) || message.from === this.nodeId) return;
    if (message.k === 'a') {
      const value = message.ok
        ? message.v
        : new SsePeerError('ERR_SSE_PEER_FAILED', message.from, `Peer ${message.from} failed the request`, { cause: message.e });
      this.#settle(message.id, message.ok, value, message.from);
    } else if (message.k === 'q') {
      let id = message.id;
      if (message.to !== undefined) {
        const i = message.to.indexOf(this.nodeId);
        if (i < 0) return this.#unasked(message.from, message.req);
        id += i;
      }
      void this.#answer(message.from, id, message.req);
    } else if (message.k === 'n') {
      if (message.to !== undefined && !message.to.includes(this.nodeId)) return this.#unasked(message.from, message.req);
      this.#handler!(message.from, message.req).catch(() => undefined);
    } else if (message.k === 'bye') {
      this.#drop(message.from, true);
    }
  }

  /**
   * A send for the others that reached this node: its sender does not see this node now (it
   * has just started, or its beats were late, or the sender's were) and did not count it. Its
   * recovery-window items are written all the same, as late ones (the recovery window promises
   * them, and a page that stays connected here would never replay them); nothing else of it.
   */
  #unasked(from: string, request: unknown): void {
    // Not checked yet (the handler checks what it is given): anyone with the Redis may have
    // published it, and a throw here would take the process down.
    if (typeof request !== 'object' || request === null || (request as { type?: unknown }).type !== 'send') return;
    const windowed = windowItems(request as SendRequest);
    if (windowed === undefined) return;
    this.#handler!(from, { type: 'send', items: windowed, deadline: 0 }).catch(() => undefined);
  }

  async #answer(from: string, id: number, request: ClusterRequest): Promise<void> {
    let envelope: Envelope;
    try {
      envelope = { k: 'a', id, from: this.nodeId, ok: true, v: (await this.#handler!(from, request)) ?? null };
    } catch (err) {
      envelope = { k: 'a', id, from: this.nodeId, ok: false, e: err instanceof Error ? err.message : String(err) };
    }
    if (this.#pub.status !== 'ready') return;
    // The asker times out if this answer is lost: nothing else to do with the failure here.
    this.#pub.publish(this.#channelOf(from), JSON.stringify(envelope)).catch(() => undefined);
  }

  /**
   * One beat: says this node is alive (with its hello), reads who else is, drops the dead
   * (and their directory entries) and rewrites this node's entries if they are missing
   * (first beat, Redis restarted empty, or this node was itself taken for dead).
   */
  async #beat(): Promise<void> {
    if (this.#beating || this.#closed) return;
    this.#beating = true;
    try {
      // Without the subscriber this node would neither hear requests nor answers: not up.
      if (this.#sub.status !== 'ready') throw new SseRedisUnavailableError('cluster heartbeat: the subscriber connection is down');
      if (!this.#subscribed) {
        // Once: ioredis subscribes again by itself after a reconnect (autoResubscribe).
        await this.#sub.subscribe(this.#channelOf(this.nodeId), this.#allChannel);
        this.#subscribed = true;
      }
      // Entries first, then the beat: peers that see this node up find its users at once
      // (after Redis restarted empty, too).
      await this.directory.refresh(this.nodeId);
      const [liveIds, expired] = (await this.#pub.eval(
        BEAT,
        2,
        this.#keys.nodes,
        this.#keys.hello,
        this.nodeId,
        JSON.stringify(this.#self),
        this.#options.nodeTtlMs,
      )) as [string[], string[]];
      const live = liveIds.filter((id) => id !== this.nodeId);
      if (expired.length > 0) await this.#collect(expired);
      if (this.#down) {
        this.#down = false;
        this.#recoveredAt = Date.now();
      }
      await this.#update(live);
    } catch (err) {
      if (!this.#closed) {
        this.#redisDown();
        const failure = redisFailure(err, 'cluster heartbeat');
        if (!(failure instanceof SseRedisUnavailableError)) this.emit('error', failure);
      }
    } finally {
      this.#beating = false;
    }
  }

  /** Removes dead nodes: from the set, their hello, their directory entries. Any node may; it is idempotent. */
  async #collect(expired: string[]): Promise<void> {
    const removed = (await this.#pub.eval(COLLECT, 2, this.#keys.nodes, this.#keys.hello, this.#options.nodeTtlMs, ...expired)) as string[];
    // One DEL per node: each node's keys share a slot, different nodes' keys need not.
    await Promise.all(removed.map((id) => this.#pub.del(...this.directory.keysOf(id))));
    for (const id of removed) this.#drop(id, true);
  }

  /** Makes the live set the peers: new ones up (hello read), missing ones down and forgotten. */
  async #update(live: string[]): Promise<void> {
    const liveSet = new Set(live);
    // After an outage the others beat again within a beat or two (into an empty Redis, if it
    // restarted so): until a TTL has passed, one not seen yet stays unreachable, so its part
    // of a send still counts as failed instead of silently missing.
    const settling = this.#recoveredAt !== undefined && Date.now() - this.#recoveredAt < this.#options.nodeTtlMs;
    if (!settling) this.#recoveredAt = undefined;
    for (const id of this.#peers.keys()) if (!liveSet.has(id)) this.#drop(id, true);
    if (!settling) for (const id of this.#unreachable.keys()) if (!liveSet.has(id)) this.#drop(id, true);
    const fresh = live.filter((id) => !this.#peers.has(id));
    if (fresh.length === 0) return;
    const hellos = await this.#pub.hmget(this.#keys.hello, ...fresh);
    for (const [i, id] of fresh.entries()) {
      const raw = hellos[i];
      if (typeof raw !== 'string') continue;
      let hello: HelloAnswer;
      try {
        hello = JSON.parse(raw) as HelloAnswer;
      } catch {
        continue;
      }
      if (hello?.nodeId !== id || this.#closed) continue;
      this.#unreachable.delete(id);
      this.#peers.set(id, hello);
      this.#tellPeers();
      this.emit('peer-up', hello);
    }
  }

  /** A peer left (`gone`: forgotten) or cannot be reached now (kept as unreachable). */
  #drop(nodeId: string, gone: boolean): void {
    const peer = this.#peers.get(nodeId) ?? this.#unreachable.get(nodeId);
    if (peer === undefined) return;
    if (gone) this.#unreachable.delete(nodeId);
    else this.#unreachable.set(nodeId, peer);
    if (!this.#peers.delete(nodeId)) return;
    this.#tellPeers();
    this.emit('peer-down', nodeId);
  }

  /** The peers a send counts changed: discovery may want to know (the workers' primary waits for it). */
  #tellPeers(): void {
    this.#options.discovery?.verified?.([...this.#peers.keys()]);
  }

  /** Redis cannot be reached: every peer is known but down until a beat succeeds again. */
  #redisDown(): void {
    if (this.#closed) return;
    this.directory.lost();
    this.#down = true;
    for (const id of [...this.#peers.keys()]) this.#drop(id, false);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    this.#windowLog?.close();
    this.#writes.flush();
    // No directory write may follow the keys' removal below.
    this.directory.close();
    try {
      if (this.#pub.status === 'ready') {
        await this.#pub.publish(this.#allChannel, JSON.stringify({ k: 'bye', from: this.nodeId } satisfies Envelope));
        await Promise.all([
          this.#pub.multi().zrem(this.#keys.nodes, this.nodeId).hdel(this.#keys.hello, this.nodeId).exec(),
          this.#pub.del(...this.directory.keysOf(this.nodeId)),
        ]);
      }
    } catch {
      // Redis is down: the others drop this node when its beat expires.
    }
    // After the bye (the others drop this node on it): the primary, told next, lists a new
    // node of this id only after that.
    await this.#options.discovery?.close();
    this.#closed = true;
    for (const [id, waiting] of this.#waiting) {
      clearTimeout(waiting.timer);
      waiting.reject(new SseRedisUnavailableError('cluster transport closed'));
      this.#waiting.delete(id);
    }
    this.#pub.disconnect();
    this.#sub.disconnect();
  }
}
