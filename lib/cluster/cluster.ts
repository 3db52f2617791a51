import { EventEmitter } from 'node:events';
import { isChannelName } from '../core/channels.js';
import { SsePeerError, SseTooManyChannelsError, SseTooManyListenersError } from '../core/errors.js';
import { encodeFrame } from '../core/frame.js';
import type { HelloAnswer } from '../core/hello.js';
import type { QueryAnswer, QueryArgs, QueryName } from '../core/queries.js';
import type { SendTargetKind } from '../core/targets.js';
import type { Connection, DurationRecord } from '../local/connection.js';
import type { DisconnectReason, LocalNode } from '../local/local-node.js';
import type { RecoveryWindow } from '../local/recovery-window.js';
import type { DurableItem, FanOut, RequestOf } from './cluster-link.js';
import { StaticDiscovery } from './discovery.js';
import {
  PROTOCOL_VERSION,
  type ClusterRequest,
  type ConnectionChannelsAnswer,
  type MembersAnswer,
  type MemberStateAnswer,
  type PeerMemberState,
  type QueryRequest,
  type SendAnswer,
  type SendItem,
  type SiblingsAnswer,
} from './messages.js';
import { PeerMembers } from './peer-members.js';
import { checkClusterRequest } from './request-check.js';
import type { ClusterTransport, SharedWindowLog } from './transport.js';

export type { FanOut } from './cluster-link.js';

/** Events of the cluster (the hub re-emits them). */
export interface ClusterEvents {
  /** A peer proved it knows the secret and now takes part. */
  'peer-up': [peer: HelloAnswer];
  /** A peer left or stopped answering. */
  'peer-down': [nodeId: string];
  /**
   * @internal Right after `peer-down`: the users that peer held in channels someone wants
   * presence for, as far as this node knew (`PeerMembers`). The presence tracker holds their
   * leaves. Not re-emitted by the hub.
   */
  'members-lost': [nodeId: string, members: [channel: string, userId: string][]];
  /**
   * A peer's part of one operation is missing: it failed or timed out, it is known but down
   * (`ERR_SSE_PEER_DOWN`, not asked), or it got a send after its deadline (`ERR_SSE_PEER_LATE`).
   * That operation's result is partial.
   */
  'peer-error': [info: { nodeId: string; operation: string; error: unknown }];
  /** One request to a peer finished (for metrics): how long it took and whether it succeeded. */
  'peer-rpc': [info: { nodeId: string; operation: string; ms: number; ok: boolean }];
  error: [error: unknown];
}

interface PendingSend {
  item: SendItem;
  resolve: (result: FanOut<number>) => void;
}

/** Most (channel, user) questions in one `member-state` request. */
const MEMBER_STATE_PAGE = 1000;

interface PendingMemberState {
  channel: string;
  userId: string;
  held: boolean | undefined;
  resolve: (states: PeerMemberState[]) => void;
}

/**
 * How far inside the timeout a forwarded send's deadline lies: a peer must write it and its
 * answer get back before the sender gives up, also when the sender's event loop is busy.
 */
function deadlineMargin(timeoutMs: number): number {
  return Math.min(100, timeoutMs / 10);
}

function peerDown(nodeId: string): SsePeerError {
  return new SsePeerError('ERR_SSE_PEER_DOWN', nodeId, `Peer ${nodeId} is down: known, but not answering health checks`);
}

function peerLate(nodeId: string): SsePeerError {
  const message = `Peer ${nodeId} got the send after its deadline (it was stalled, or its clock is ahead of this node's): not counted; written late only if it carries a recovery-window id`;
  return new SsePeerError('ERR_SSE_PEER_LATE', nodeId, message);
}

/** Only the numbers of a peer's duration record: nothing else of it reaches the connection. */
function durationRecordOf(record: DurationRecord | undefined): DurationRecord | undefined {
  if (record === null || typeof record !== 'object') return undefined;
  const out: DurationRecord = {};
  if (isSeconds(record.sessionDuration)) out.sessionDuration = record.sessionDuration;
  if (isSeconds(record.duration)) out.duration = record.duration;
  return out;
}

/** Only valid channel names of a peer's request. */
function channelsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter(isChannelName) : [];
}

function isSeconds(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/**
 * The cluster side of a hub: forwards operations to the peers and answers theirs from the
 * local node (and durable delivery). Sends made in one turn of the event loop go to each
 * peer as one request (coalescing), every peer is asked in parallel, and a peer that does
 * not answer within the timeout only costs that timeout and is reported as failed — never a
 * hang, never a silent success. Modules answer request kinds of their own over the
 * `ClusterLink` interface (cluster-link.ts) its internal members make up (durable
 * delivery's: cluster/durable-cluster.ts; the hub hands the cluster to it, which checks
 * the fit; no `implements`, which the published types, stripped of those members, would break).
 */
export class Cluster extends EventEmitter<ClusterEvents> {
  readonly #local: LocalNode;
  readonly #transport: ClusterTransport;
  readonly #timeoutMs: number;
  readonly #group: string;
  /** What modules answer (durable delivery's request kinds). */
  readonly #handlers = new Map<ClusterRequest['type'], (from: string, request: ClusterRequest) => unknown>();
  #deliverDurable: ((item: DurableItem) => number) | undefined;
  /** Sees each peer's ordinary send with a recovery-window id once written here (see {@link ClusterLink.watchWindowItems}). */
  #windowItems: ((item: SendItem, frame: Buffer) => void) | undefined;
  /** Hears of this node's ordinary sends with a window id that a peer was asked and failed (see {@link ClusterLink.watchWindowMisses}). */
  #windowMisses: ((item: SendItem, peers: string[]) => void) | undefined;
  /** What modules add to this node's `hello`. */
  #announced: Pick<HelloAnswer, 'qosTag' | 'qosCopies' | 'qosPullMe' | 'windowTook'> = {};
  #batch: PendingSend[] = [];
  #scheduled = false;
  /** Count-free sends of this tick ({@link Cluster.sendUncounted}). */
  #uncounted: SendItem[] = [];
  #memberBatch: PendingMemberState[] = [];
  /** Where the `member-state` questions are: a round scheduled for this tick, out to the peers, or neither. */
  #memberRound: 'idle' | 'scheduled' | 'asking' = 'idle';
  /** The peers' users in channels, to announce their leaves when a peer vanishes. */
  readonly #members = new PeerMembers();
  readonly #interested: (channel: string) => boolean;
  #closed = false;

  /**
   * @internal Created by the hub from its `cluster` option. `interested`: the channels someone
   * wants presence for (only their members travel in snapshots); default none.
   */
  constructor(
    local: LocalNode,
    transport: ClusterTransport,
    options: { timeoutMs: number; group: string; interested?: (channel: string) => boolean },
  ) {
    super();
    this.#local = local;
    this.#transport = transport;
    this.#timeoutMs = options.timeoutMs;
    this.#group = options.group;
    this.#interested = options.interested ?? (() => false);
    transport.on('error', (err) => this.emit('error', err));
    transport.on('peer-up', (peer) => {
      this.emit('peer-up', peer);
      void this.#learnMembers(peer.nodeId);
    });
    transport.on('peer-down', (nodeId) => {
      const members = this.#members.take(nodeId);
      this.emit('peer-down', nodeId);
      if (members.length > 0) this.emit('members-lost', nodeId, members);
    });
    transport.directory?.track(local);
    // A value kept on every node was given here: the others' copies would be given again later.
    local.on('kept-duration-used', (kind, key) => {
      if (this.#closed || this.#transport.peers().length === 0) return;
      void this.keepDuration(kind, [key], null);
    });
    // The local node has already trimmed this browser's streams on this node (the fast path);
    // the peers' count only once there are peers.
    local.on('connect', (conn) => {
      if (this.#closed || this.#transport.peers().length === 0) return;
      this.#capClient(conn).catch((err: unknown) => this.emit('error', err));
    });
  }

  get nodeId(): string {
    return this.#transport.nodeId;
  }

  /** Where this node's internal endpoint listens, when it has one (HTTP transport). */
  get address(): { host: string; port: number } | undefined {
    return (this.#transport as { address?: { host: string; port: number } }).address;
  }

  /**
   * Replaces the static peer list (`host:port`, like the `peers` option), also after start:
   * new addresses are probed at once and become peers once verified; removed ones go down.
   * @throws TypeError for a bad list, or if this node does not use static discovery.
   */
  setPeers(peers: readonly string[]): void {
    const discovery = (this.#transport as { discovery?: unknown }).discovery;
    if (!(discovery instanceof StaticDiscovery)) throw new TypeError('cluster.setPeers needs static discovery');
    discovery.setPeers(peers);
  }

  /** Verified peers that are up. */
  peers(): HelloAnswer[] {
    return this.#transport.peers();
  }

  /**
   * Peers that were verified and are still known (static list, mDNS) but do not answer now.
   * While one is listed, every answer that would include its part is partial.
   */
  unreachable(): HelloAnswer[] {
    return this.#transport.unreachable();
  }

  /** @internal Starts answering peers (after the modules registered what they answer). */
  async start(): Promise<void> {
    const self: HelloAnswer = { nodeId: this.#transport.nodeId, group: this.#group, protocol: PROTOCOL_VERSION, ...this.#announced };
    await this.#transport.start((from, request) => this.#handle(from, request), self);
  }

  // ---- for modules (the ClusterLink interface of cluster-link.ts) -----------------------

  /** @internal */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal */
  handle<K extends ClusterRequest['type']>(type: K, handler: (from: string, request: RequestOf<K>) => unknown): void {
    this.#handlers.set(type, handler as (from: string, request: ClusterRequest) => unknown);
  }

  /** @internal */
  deliverDurable(deliver: (item: DurableItem) => number): void {
    this.#deliverDurable = deliver;
  }

  /** @internal */
  watchWindowItems(watch: (item: SendItem, frame: Buffer) => void): void {
    this.#windowItems = watch;
  }

  /** @internal */
  watchWindowMisses(watch: (item: SendItem, peers: string[]) => void): void {
    this.#windowMisses = watch;
  }

  /** @internal */
  announce(fields: Pick<HelloAnswer, 'qosTag' | 'qosCopies' | 'qosPullMe' | 'windowTook'>): void {
    this.#announced = { ...this.#announced, ...fields };
  }

  /** @internal */
  onPeers(up: (peer: HelloAnswer) => void, down: (nodeId: string) => void): void {
    this.on('peer-up', up);
    this.on('peer-down', down);
  }

  /** @internal */
  request(nodeId: string, request: ClusterRequest, timeoutMs = this.#timeoutMs): Promise<unknown> {
    return this.#transport.request(nodeId, request, timeoutMs);
  }

  /** @internal */
  peerError(nodeId: string, operation: string, error: unknown): void {
    this.emit('peer-error', { nodeId, operation, error });
  }

  /** @internal */
  error(error: unknown): void {
    this.emit('error', error);
  }

  /**
   * The recovery window in a store the transport shares with every node (the Redis engine's
   * Stream), if it has one.
   * @internal
   */
  sharedWindowLog(window: RecoveryWindow): SharedWindowLog | undefined {
    return this.#transport.windowLog?.(window, (err) => this.emit('error', err));
  }

  // ---- outgoing ----------------------------------------------------------------------

  /**
   * Forwards a send to every peer; resolves to the peers' counts. Coalesced per tick. A peer
   * that does not answer within the timeout counts 0 and is failed, and never writes it later
   * (the request carries a deadline); a known peer that is down is skipped and failed.
   */
  send(item: SendItem): Promise<FanOut<number>> {
    // Alone, a send has nobody to reach, unless the transport reaches the nodes this one does not see.
    const alone = this.#transport.peers().length === 0 && this.#transport.unreachable().length === 0;
    if (this.#closed || (alone && (this.#transport.sendsReachAll !== true || item.wid === undefined))) {
      return Promise.resolve({ values: [], failed: [] });
    }
    return new Promise((resolve) => {
      this.#batch.push({ item, resolve });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flushSends());
      }
    });
  }

  /**
   * Forwards a send to every peer without waiting for their counts (a count-free send):
   * coalesced per tick like {@link Cluster.send}, sent one-way where the transport can
   * (Redis: the peers answer nothing), else asked with the answers ignored. Peers that fail
   * are not reported: nobody waits for them.
   */
  sendUncounted(item: SendItem): void {
    if (this.#closed || (this.#transport.peers().length === 0 && (this.#transport.sendsReachAll !== true || item.wid === undefined))) return;
    this.#uncounted.push(item);
    // Flushed as soon as this run of code (and the promises it settles) is done, not a loop turn
    // later: nobody waits for an answer, only for the delivery, and sends made in one run (a
    // loop, an awaited loop of count-free sends) still go together.
    if (this.#uncounted.length === 1) process.nextTick(() => this.#flushUncounted());
  }

  #flushUncounted(): void {
    const items = this.#uncounted;
    this.#uncounted = [];
    const peerIds = this.#transport.peers().map((p) => p.nodeId);
    if ((peerIds.length === 0 && this.#transport.sendsReachAll !== true) || this.#closed) return;
    const deadline = Date.now() + this.#timeoutMs - deadlineMargin(this.#timeoutMs);
    const request: ClusterRequest = { type: 'send', items, deadline };
    if (this.#transport.notify !== undefined) return this.#transport.notify(peerIds, request);
    for (const peerId of peerIds) this.#transport.request(peerId, request, this.#timeoutMs).catch(() => undefined);
  }

  async #flushSends(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#batch;
    this.#batch = [];
    const items = batch.map((p) => p.item);
    const deadline = Date.now() + this.#timeoutMs - deadlineMargin(this.#timeoutMs);
    const down = new Set(this.#transport.unreachable().map((p) => p.nodeId));
    const { answers, failed } = await this.#ask<SendAnswer>({ type: 'send', items, deadline });
    // A peer that was asked and failed (not one known down, not one that answered late: it wrote
    // the send late) may never write it: its pages missed it live, whatever they resume from.
    const missedBy = failed.filter((id) => !down.has(id));
    if (this.#windowMisses !== undefined && missedBy.length > 0) {
      for (const item of items) if (item.wid !== undefined && item.id === undefined) this.#windowMisses(item, missedBy);
    }
    const results = batch.map((): FanOut<number> => ({ values: [], failed: [...failed] }));
    const late = new Set<string>();
    for (const [nodeId, counts] of answers) {
      results.forEach((result, i) => {
        const count = Array.isArray(counts) ? counts[i] : undefined;
        if (count === null) {
          late.add(nodeId);
          result.failed.push(nodeId);
        } else {
          result.values.push(Number(count ?? 0));
        }
      });
    }
    for (const nodeId of late) this.emit('peer-error', { nodeId, operation: 'send', error: peerLate(nodeId) });
    batch.forEach((p, i) => p.resolve(results[i]!));
  }

  /**
   * Runs a query on every peer.
   * @param timeoutMs the longest wait for one peer; default the cluster's `timeoutMs`
   */
  query<N extends QueryName>(name: N, args: QueryArgs<N>, timeoutMs = this.#timeoutMs): Promise<FanOut<QueryAnswer<N>>> {
    const request = { type: 'query', name, args } as QueryRequest;
    if (this.#transport.directory !== undefined) return this.#queryDirectory<N>(request, timeoutMs);
    return this.#fanOut<QueryAnswer<N>>(request, timeoutMs);
  }

  /**
   * A query through the transport's directory: answered from it, or asked of only the peers
   * it names as holders. When the directory cannot be read, every live peer's part is missing.
   */
  async #queryDirectory<N extends QueryName>(request: QueryRequest, timeoutMs: number): Promise<FanOut<QueryAnswer<N>>> {
    const failed = this.reportDown(request.type);
    const peerIds = this.#transport.peers().map((p) => p.nodeId);
    if (peerIds.length === 0) return { values: [], failed };
    let answer;
    try {
      answer = await this.#transport.directory!.query(request.name, request.args, peerIds);
    } catch (err) {
      for (const nodeId of peerIds) this.emit('peer-error', { nodeId, operation: request.type, error: err });
      return { values: [], failed: [...failed, ...peerIds] };
    }
    if ('values' in answer) return { values: answer.values as QueryAnswer<N>[], failed };
    if (answer.ask.length === 0) return { values: [], failed };
    const asked = await this.#ask<QueryAnswer<N>>(request, timeoutMs, answer.ask);
    return { values: asked.answers.map(([, value]) => value), failed: [...failed, ...asked.failed] };
  }

  /**
   * Closes what a target reaches on the peers, with `record` written on each connection first.
   * `timeoutMs`: the longest wait for one peer; default the cluster's `timeoutMs`.
   */
  disconnect(
    kind: SendTargetKind,
    keys: string[],
    reconnect: boolean,
    reason: DisconnectReason,
    record?: DurationRecord,
    timeoutMs = this.#timeoutMs,
  ): Promise<FanOut<number>> {
    return this.#fanOut<number>(
      record === undefined ? { type: 'disconnect', kind, keys, reconnect, reason } : { type: 'disconnect', kind, keys, reconnect, reason, record },
      timeoutMs,
    );
  }

  /** Clears online time on the peers (their connections' values and those kept for offline keys); each answers the connections cleared. */
  clearDuration(kind: SendTargetKind, keys: string[]): Promise<FanOut<number>> {
    return this.#fanOut<number>({ type: 'clear-duration', kind, keys });
  }

  /** Sets online time on the peers; each answers a count per key (so that offline keys are known). */
  duration(kind: SendTargetKind, keys: string[], seconds: number): Promise<FanOut<number[]>> {
    return this.#fanOut<number[]>({ type: 'duration', kind, keys, seconds });
  }

  /**
   * Keeps an online-time value on the peers for users or tokens offline here (`null`: drops
   * it); each answers the connections it wrote it to instead, per key (they connected there
   * meanwhile).
   */
  keepDuration(kind: 'user' | 'token', keys: string[], seconds: number | null): Promise<FanOut<number[]>> {
    return this.#fanOut<number[]>({ type: 'keep-duration', kind, keys, seconds });
  }

  /**
   * Changes the listeners of a connection held by a peer. Undefined if no peer holds it;
   * throws `ERR_SSE_TOO_MANY_LISTENERS` when its node refused the addition.
   */
  changeListeners(connectionId: string, names: string[], add: boolean): Promise<string[] | undefined> {
    return this.#askHolder({ type: 'listeners', connectionId, names, add }, (limit) => new SseTooManyListenersError(limit));
  }

  /** Server-side join or leave on the peers for a user's, token's or connection's connections; each answers the count changed. */
  changeChannels(kind: 'connection' | 'user' | 'token', keys: string[], channels: string[], join: boolean): Promise<FanOut<number>> {
    return this.#fanOut<number>({ type: 'channels', kind, keys, channels, join });
  }

  /**
   * A page's join or leave for a connection a peer holds. Undefined if no peer holds it;
   * throws `ERR_SSE_TOO_MANY_CHANNELS` when its node refused the join.
   */
  changeConnectionChannels(connectionId: string, channels: string[], join: boolean): Promise<string[] | undefined> {
    return this.#askHolder({ type: 'connection-channels', connectionId, channels, join }, (limit) => new SseTooManyChannelsError(limit));
  }

  /** Asks the peers to change a set on the connection one of them holds: its new set, undefined if none holds it, or the holder's cap refusal. */
  async #askHolder(request: ClusterRequest, refused: (limit: number) => Error): Promise<string[] | undefined> {
    const result = await this.#fanOut<ConnectionChannelsAnswer>(request);
    for (const answer of result.values) {
      if (Array.isArray(answer)) return answer;
      if (answer !== null && typeof answer === 'object' && typeof answer.refusedAt === 'number') throw refused(answer.refusedAt);
    }
    return undefined;
  }

  /**
   * Each peer's part of a user's membership in a channel (peers that fail are left out).
   * One round of questions is out at a time: those of one tick, and all that arise while a
   * round is out, go to each peer together in the next (pages of 1000). A churn of joins and
   * leaves costs a request per peer per round trip, not one per `join.do` or per pair. `held`
   * tells the peers this node's news at the same time (`MemberStateRequest.items`).
   */
  memberStates(channel: string, userId: string, held?: boolean): Promise<PeerMemberState[]> {
    if (this.#closed || (this.#transport.peers().length === 0 && this.#transport.unreachable().length === 0)) return Promise.resolve([]);
    return new Promise((resolve) => {
      this.#memberBatch.push({ channel, userId, held, resolve });
      this.#scheduleMemberStates();
    });
  }

  /** Asks a peer that just came up which users it holds in channels (its snapshot, for {@link PeerMembers}). */
  async #learnMembers(nodeId: string): Promise<void> {
    try {
      const answer = (await this.#transport.request(nodeId, { type: 'members' }, this.#timeoutMs)) as MembersAnswer;
      // Down again meanwhile: what it held was taken then; a snapshot now would never be taken.
      if (this.#transport.peers().some((p) => p.nodeId === nodeId)) this.#members.add(nodeId, answer);
    } catch (err) {
      this.emit('peer-error', { nodeId, operation: 'members', error: err });
    }
  }

  /** Asks the waiting questions at the end of this tick, unless a round is out (its end asks them). */
  #scheduleMemberStates(): void {
    if (this.#memberRound !== 'idle' || this.#memberBatch.length === 0) return;
    this.#memberRound = 'scheduled';
    setImmediate(() => void this.#flushMemberStates());
  }

  async #flushMemberStates(): Promise<void> {
    const batch = this.#memberBatch;
    this.#memberBatch = [];
    this.#memberRound = 'asking';
    const pages: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i += MEMBER_STATE_PAGE) pages.push(this.#askMemberStates(batch.slice(i, i + MEMBER_STATE_PAGE)));
    // #askMemberStates never rejects: every question is answered, with no peer's part at worst.
    await Promise.all(pages);
    this.#memberRound = 'idle';
    this.#scheduleMemberStates();
  }

  async #askMemberStates(page: PendingMemberState[]): Promise<void> {
    const items = page.map(({ channel, userId, held }) => (held === undefined ? { channel, userId } : { channel, userId, held }));
    let answers: [nodeId: string, answer: MemberStateAnswer][];
    try {
      ({ answers } = await this.#ask<MemberStateAnswer>({ type: 'member-state', items }));
    } catch (err) {
      // Never leave a decision waiting: no peer's part is known, as when they all fail.
      this.emit('error', err);
      answers = [];
    }
    page.forEach((p, i) => {
      const states: PeerMemberState[] = [];
      for (const [nodeId, answer] of answers) {
        const state = Array.isArray(answer?.states) ? answer.states[i] : undefined;
        if (state !== null && typeof state === 'object') states.push({ ...state, nodeId });
      }
      p.resolve(states);
    });
  }

  /**
   * `clientIdMaxConnections` across the cluster: asks the peers for the streams of the browser
   * `conn` came from and closes the oldest beyond the cap, wherever they are (`evicted`). The
   * new stream is never the one evicted. Two streams opened at the same moment on two nodes may
   * each evict for the other: a browser can end up with fewer streams than the cap, never more
   * for long. A peer that does not answer keeps its streams (reported as `peer-error`).
   */
  async #capClient(conn: Connection): Promise<void> {
    const key = conn.clientKey;
    if (key === undefined) return;
    const { answers } = await this.#ask<SiblingsAnswer>({ type: 'siblings', clientKey: key });
    if (conn.closed) return;
    const streams: { id: string; createdAt: number; nodeId?: string }[] = this.#local
      .siblingsByKey(key)
      .map((c) => ({ id: c.id, createdAt: c.createdAt }));
    for (const [nodeId, answer] of answers) {
      if (!Array.isArray(answer)) continue;
      for (const s of answer)
        if (typeof s?.id === 'string' && typeof s.createdAt === 'number') streams.push({ id: s.id, createdAt: s.createdAt, nodeId });
    }
    const excess = streams.length - this.#local.options.clientIdMaxConnections;
    if (excess <= 0) return;
    const oldest = streams.filter((s) => s.id !== conn.id).sort((x, y) => x.createdAt - y.createdAt || (x.id < y.id ? -1 : 1));
    const remote = new Map<string, string[]>();
    for (const s of oldest.slice(0, excess)) {
      if (s.nodeId === undefined) this.#local.get(s.id)?.close('evicted', false);
      else remote.set(s.nodeId, [...(remote.get(s.nodeId) ?? []), s.id]);
    }
    await Promise.all(
      [...remote].map(async ([nodeId, keys]) => {
        try {
          await this.#transport.request(
            nodeId,
            { type: 'disconnect', kind: 'connection', keys, reconnect: false, reason: 'evicted' },
            this.#timeoutMs,
          );
        } catch (err) {
          this.emit('peer-error', { nodeId, operation: 'disconnect', error: err });
        }
      }),
    );
  }

  async #fanOut<T>(request: ClusterRequest, timeoutMs = this.#timeoutMs): Promise<FanOut<T>> {
    const { answers, failed } = await this.#ask<T>(request, timeoutMs);
    return { values: answers.map(([, value]) => value), failed };
  }

  /**
   * Asks every peer that is up, in parallel, and answers who said what. A known peer that is
   * down is not asked (it would only cost the timeout) but is failed all the same: its part
   * is missing.
   */
  async #ask<T>(
    request: ClusterRequest,
    timeoutMs = this.#timeoutMs,
    only?: string[],
  ): Promise<{ answers: [nodeId: string, answer: T][]; failed: string[] }> {
    // Asked of chosen peers (a directory named the holders): the others are not part of it.
    const failed = only === undefined ? this.reportDown(request.type) : [];
    const peerIds = this.#transport.peers().map((p) => p.nodeId);
    const ids = only === undefined ? peerIds : only.filter((id) => peerIds.includes(id));
    const answers: [string, T][] = [];
    const started = performance.now();
    // One message for all where the transport can (Redis broadcast), else one request per peer.
    const pending = this.#transport.broadcast?.(ids, request, timeoutMs) ?? ids.map((id) => this.#transport.request(id, request, timeoutMs));
    await Promise.all(
      ids.map(async (nodeId, i) => {
        try {
          answers.push([nodeId, (await pending[i]) as T]);
          this.emit('peer-rpc', { nodeId, operation: request.type, ms: performance.now() - started, ok: true });
        } catch (err) {
          failed.push(nodeId);
          this.emit('peer-rpc', { nodeId, operation: request.type, ms: performance.now() - started, ok: false });
          this.emit('peer-error', { nodeId, operation: request.type, error: err });
        }
      }),
    );
    return { answers, failed };
  }

  /** @internal Reports each known peer that is down (and matches `which`) as failing `operation`; answers their ids. */
  reportDown(operation: string, which: (peer: HelloAnswer) => boolean = () => true): string[] {
    const down: string[] = [];
    for (const peer of this.#transport.unreachable()) {
      if (!which(peer)) continue;
      down.push(peer.nodeId);
      this.emit('peer-error', { nodeId: peer.nodeId, operation, error: peerDown(peer.nodeId) });
    }
    return down;
  }

  // ---- incoming ----------------------------------------------------------------------

  async #handle(from: string, raw: ClusterRequest): Promise<unknown> {
    // Checked whole before anything is done: a malformed request is refused, never half-run.
    const request = checkClusterRequest(raw);
    const local = this.#local;
    switch (request.type) {
      case 'hello':
        return null;
      case 'send': {
        // Past the deadline its sender has counted this node late (answered null, reported as
        // ERR_SSE_PEER_LATE). An ordinary send without a window id is then not written: what was
        // reported undelivered is never delivered. One with a window id (recovery on) is written
        // all the same: its sender's window promises it to the page, and a page that stays
        // connected here would never replay it (only a reconnect does). A durable one is written:
        // its owner keeps it pending (queues) or retained (logs) either way, and late beats missing.
        const late = typeof request.deadline === 'number' && Date.now() > request.deadline;
        return request.items.map((item): number | null => {
          if (!late || item.id !== undefined) return this.#deliver(item);
          if (item.wid !== undefined) this.#deliver(item);
          return null;
        });
      }
      case 'query':
        return local.query(request.name, request.args);
      case 'disconnect':
        return local.disconnect(request.kind, request.keys, request.reconnect, request.reason, durationRecordOf(request.record));
      case 'duration':
        return request.keys.map((key) => local.setDuration(request.kind, [key], request.seconds));
      case 'clear-duration':
        return local.clearDuration(request.kind, request.keys);
      case 'keep-duration': {
        const { kind, seconds } = request;
        if ((kind !== 'user' && kind !== 'token') || !Array.isArray(request.keys)) return [];
        const keys = request.keys.map(String);
        if (seconds === null) return keys.map((key) => (local.forgetDuration(kind, key), 0));
        if (!isSeconds(seconds)) return [];
        return keys.map((key) => {
          const written = local.setDuration(kind, [key], seconds);
          if (written === 0) local.keepDuration(kind, key, seconds);
          return written;
        });
      }
      case 'siblings':
        return local.siblingsByKey(request.clientKey).map((c): SiblingsAnswer[number] => ({ id: c.id, createdAt: c.createdAt }));
      case 'listeners': {
        const conn = local.get(request.connectionId);
        if (conn === undefined) return null;
        try {
          return local.changeListeners(conn, request.names, request.add);
        } catch (err) {
          // The refusal is the asker's answer, not a failure of this node.
          if (err instanceof SseTooManyListenersError)
            return { refusedAt: local.options.maxListenersPerConnection } satisfies ConnectionChannelsAnswer;
          throw err;
        }
      }
      case 'channels': {
        const channels = channelsOf(request.channels);
        const kind = request.kind;
        if (kind !== 'connection' && kind !== 'user' && kind !== 'token') return 0;
        return local.changeChannelsOf(kind, request.keys, channels, request.join === true);
      }
      case 'connection-channels': {
        const conn = local.get(request.connectionId);
        if (conn === undefined) return null;
        try {
          return local.changeChannels(conn, channelsOf(request.channels), request.join === true);
        } catch (err) {
          // The refusal is the asker's answer, not a failure of this node.
          if (err instanceof SseTooManyChannelsError) return { refusedAt: local.options.maxChannelsPerConnection } satisfies ConnectionChannelsAnswer;
          throw err;
        }
      }
      case 'member-state': {
        const items = Array.isArray(request.items) ? request.items.slice(0, MEMBER_STATE_PAGE) : [];
        for (const item of items) {
          if (typeof item?.held === 'boolean' && isChannelName(item.channel) && typeof item.userId === 'string')
            this.#members.note(from, item.channel, item.userId, item.held);
        }
        const states = items.map((item) => local.memberState(String(item?.channel), String(item?.userId)));
        return { nodeId: this.nodeId, states } satisfies MemberStateAnswer;
      }
      case 'members':
        return local.members(this.#interested) satisfies MembersAnswer;
      default:
        // A module's kind (durable delivery's); none registered: nothing here to answer with.
        return this.#handlers.get(request.type)?.(from, request) ?? null;
    }
  }

  /** Writes a forwarded send here; a durable one goes to durable delivery (acks to its owner) when it runs here. */
  #deliver(item: SendItem): number {
    if (item.id !== undefined && item.kind !== 'connection' && this.#deliverDurable !== undefined) {
      const { id, kind, keys, event, data, listening } = item;
      return this.#deliverDurable({ id, kind, keys, event, data, listening });
    }
    // An ordinary send carries its sender's recovery-window id (`wid`), the same for every recipient.
    const frame = encodeFrame({ event: item.event, data: item.data, id: item.id ?? item.wid });
    const written = this.#local.deliver(item.kind, item.keys, frame, item.event, item.listening);
    if (item.wid !== undefined && item.id === undefined) this.#windowItems?.(item, frame);
    return written;
  }

  /** @internal */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#transport.close();
  }
}
