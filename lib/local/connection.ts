import type { ServerResponse } from 'node:http';
import type { ClientInfo } from '../core/client-info.js';
import type { ConnectionHandle } from '../core/connection-handle.js';
import type { ConnectionInfo } from '../core/connection-info.js';
import { encodeFrame, encodeRetry } from '../core/frame.js';
import { hashToken } from '../core/token-hash.js';
import type { SseUser } from '../core/user.js';
import { DirectWriter, directSocketOf, writeHeadWith } from './write-path.js';

export type { ConnectionInfo } from '../core/connection-info.js';

const NO_CHANNELS: readonly string[] = Object.freeze([]);

/** The listener set of every stream that listens to nothing: shared, so it refuses changes. */
class EmptyListeners extends Set<string> {
  override add(): this {
    throw new TypeError('Connection.listeners is read-only: use hub.addListeners');
  }
  override delete(): boolean {
    return false;
  }
  override clear(): void {}
}
const NO_LISTENERS: ReadonlySet<string> = new EmptyListeners();

/** Why a stream ended. Sent as `connect-close.reason` when the server closes on purpose. */
export type CloseReason = 'kick' | 'evicted' | 'expired' | 'shutdown' | 'slow' | 'client' | 'error';

/** Request facts of the request that opened a stream. Never cookies or Authorization. */
export interface RequestInfo {
  /**
   * The client's address: Koa's `ctx.ip` (with `app.proxy`, from `X-Forwarded-For`). On a
   * stream of the plugin, read when first asked, which costs a system call without
   * `app.proxy`. It is read when the stream opens when the app set `ctx.request.ip` or read
   * `ctx.ip` before, and when the hub has `disconnect` listeners. Asked only after the
   * socket closed (a listener added later), the socket's address is gone: `''`.
   */
  ip: string;
  /** The host the page asked for: Koa's `ctx.hostname` (with `app.proxy`, from `X-Forwarded-Host`). */
  domain: string;
  userAgent: string;
}

/**
 * Online time recorded on a connection as it ends: what the client reports when it leaves
 * (`disconnect.do`), or what the app passes to a `disconnect*` call.
 */
export interface DurationRecord {
  /** Online seconds of the whole session: becomes `sessionDuration`. */
  sessionDuration?: number;
  /** Seconds of this stream. Kept as the attribute `duration`. */
  duration?: number;
}

/** Told once when a connection ends, whoever ended it; the local node removes it from its indexes. */
export type ConnectionEndHandler = (conn: Connection, reason: CloseReason) => void;

/** The running totals a node keeps of what its connections were written (see `HubStats`). */
export interface WriteMeter {
  eventsSent: number;
  eventsFailed: number;
  bytesSent: number;
}

/**
 * One open SSE response. Created by the local node, never directly. Holds what the client said
 * about itself and counters; the write path ({@link Connection.write}) is the hot path of every
 * send. It knows nothing of the node that holds it: it reports its end through a callback.
 */
export class Connection implements ConnectionHandle {
  /** Always held by this node. */
  readonly remote = false;
  /** Unguessable id (144 random bits), the client's handle for requests and disconnect. */
  readonly id: string;
  readonly user: SseUser;
  readonly userId: string | undefined;
  readonly accessToken: string | undefined;
  readonly tenantId: string | undefined;
  readonly channel: string | undefined;
  readonly client: ClientInfo;
  readonly request: RequestInfo;
  readonly createdAt: number;
  /** When the server will close the stream with `reason: 'expired'` (ms since epoch). */
  readonly expiresAt: number;
  /**
   * @internal The browser this stream comes from, for the `clientIdMaxConnections` cap: user
   * (else token) + clientId + domain + tenant, as one string that crosses the wire to peers
   * unchanged. Undefined when the stream has no identity to share. Computed once.
   */
  readonly clientKey: string | undefined;
  eventsWritten = 0;
  requests = 0;
  uploads = 0;
  lastRequestAt: number | undefined;
  /** Online seconds, as last told by the client or by `setDuration*`. */
  sessionDuration: number | undefined;
  #closed = false;
  #closeReason: CloseReason | undefined;
  readonly #res: ServerResponse;
  readonly #onEnd: ConnectionEndHandler;
  readonly #limit: number;
  /** Created on first use: most connections never get an attribute. */
  #attributes: Map<string, unknown> | undefined;
  /** Events listened to; created with the first one (most streams send none: ~120 bytes each saved). */
  #listeners: Set<string> | undefined;
  /** Channels joined at runtime, with when (ms since the epoch); created on first join. */
  #channels: Map<string, number> | undefined;
  /** Writes chunks straight to the socket, once the head is sent and that is allowed (HTTP/1.1). */
  #direct: DirectWriter | undefined;
  /** The node's totals: every event written here counts there, whichever path wrote it. */
  readonly #meter: WriteMeter;
  /** Frames written while the stream waits for its recovery (see {@link Connection.hold}). */
  #held: Buffer[] | undefined;
  #heldBytes = 0;

  /** @internal */
  constructor(init: {
    id: string;
    res: ServerResponse;
    onEnd: ConnectionEndHandler;
    user: SseUser;
    userId: string | undefined;
    accessToken: string | undefined;
    tenantId: string | undefined;
    client: ClientInfo;
    request: RequestInfo;
    expiresAt: number;
    writeBufferLimit: number;
    meter: WriteMeter;
  }) {
    this.id = init.id;
    this.#meter = init.meter;
    this.#onEnd = init.onEnd;
    this.#res = init.res;
    this.user = init.user;
    this.userId = init.userId;
    this.accessToken = init.accessToken;
    this.tenantId = init.tenantId;
    this.channel = init.client.channel;
    this.client = init.client;
    this.request = init.request;
    if (init.client.listeners.length > 0) this.#listeners = new Set(init.client.listeners);
    this.sessionDuration = init.client.sessionDuration;
    this.createdAt = Date.now();
    this.expiresAt = init.expiresAt;
    const clientId = init.client.clientId;
    // Fully anonymous clients share no identity: a known clientId must not let one evict another.
    this.clientKey =
      clientId === undefined || (this.userId === undefined && this.accessToken === undefined)
        ? undefined
        : JSON.stringify([this.userId ?? this.accessToken ?? null, clientId, this.request.domain, this.tenantId ?? null]);
    this.#limit = init.writeBufferLimit;
    for (const k in init.client.attributes) this.attributes.set(k, init.client.attributes[k]);
    init.res.on('close', () => this.#lost());
  }

  /**
   * Events currently listened to (the `listening` send option matches against it). Read-only:
   * `hub.addListeners` / `removeListeners` change it (and the index behind `listening`).
   */
  get listeners(): ReadonlySet<string> {
    return this.#listeners ?? NO_LISTENERS;
  }

  /** @internal Adds an event name; false if it was listened to already. The local node keeps the index. */
  addListener(name: string): boolean {
    const listeners = (this.#listeners ??= new Set());
    if (listeners.has(name)) return false;
    listeners.add(name);
    return true;
  }

  /** @internal Removes an event name; false if it was not listened to. */
  deleteListener(name: string): boolean {
    return this.#listeners?.delete(name) === true;
  }

  /** Application attributes: connect parameters the library does not know, plus your own. */
  get attributes(): Map<string, unknown> {
    return (this.#attributes ??= new Map());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Channels joined at runtime (`join.do`, `hub.joinChannel`, the connect parameter `channels`), in join order. Not the fixed `channel`. */
  get channels(): string[] {
    return this.#channels === undefined || this.#channels.size === 0 ? [] : [...this.#channels.keys()];
  }

  /** How many channels it joined at runtime (the `maxChannelsPerConnection` count). */
  get channelCount(): number {
    return this.#channels?.size ?? 0;
  }

  /** Whether it is a member of `channel`: its fixed `channel`, or one joined at runtime. */
  memberOf(channel: string): boolean {
    return this.channel === channel || this.#channels?.has(channel) === true;
  }

  /** Every channel it is a member of, each once: the fixed one first. */
  memberships(): readonly string[] {
    // Most connections have no channel at all: no array per connect and per close for them.
    if (this.#channels === undefined || this.#channels.size === 0) return this.channel === undefined ? NO_CHANNELS : [this.channel];
    const runtime = this.channels;
    if (this.channel === undefined) return runtime;
    return [this.channel, ...runtime.filter((c) => c !== this.channel)];
  }

  /** When it became a member of `channel` (its creation for the fixed one), or undefined. */
  joinedAt(channel: string): number | undefined {
    return this.#channels?.get(channel) ?? (channel === this.channel ? this.createdAt : undefined);
  }

  /** @internal Records a runtime join; the local node keeps the indexes. False if it was a member already at runtime. */
  addChannel(channel: string, at: number): boolean {
    const channels = (this.#channels ??= new Map());
    if (channels.has(channel)) return false;
    channels.set(channel, at);
    return true;
  }

  /** @internal Records a runtime leave. False if it had not joined `channel` at runtime. */
  deleteChannel(channel: string): boolean {
    return this.#channels?.delete(channel) === true;
  }

  get closeReason(): CloseReason | undefined {
    return this.#closeReason;
  }

  /** Bytes written but not yet taken by the kernel. Grows when the client reads slowly. */
  get bufferedAmount(): number {
    return this.#res.writableLength + (this.#direct?.queued ?? 0);
  }

  /**
   * Writes an encoded frame (or `events` frames joined in one Buffer). Returns false if the connection is closed or was just closed
   * for exceeding its write-buffer limit (a slow reader never grows memory without bound).
   */
  write(frame: Buffer, events = 1): boolean {
    if (!this.#write(frame, events)) {
      if (events > 0) this.#meter.eventsFailed += events;
      return false;
    }
    if (events > 0) {
      this.#meter.eventsSent += events;
      this.#meter.bytesSent += frame.length;
    }
    return true;
  }

  /**
   * Writes a frame of the protocol itself (`connect-finish`, `sse-channels`, …): one of this
   * connection's `eventsWritten`, not a send in the node's totals. As text (`connect-finish`),
   * the first frame of a stream leaves with its head without being encoded first.
   * @internal
   */
  writeProtocol(frame: Buffer | string): boolean {
    if (typeof frame === 'string') {
      if (!this.#closed && this.#held === undefined && writeHeadWith(this.#res, frame)) {
        this.eventsWritten++;
        return true;
      }
      frame = Buffer.from(frame, 'utf8');
    }
    return this.#write(frame, 1);
  }

  /**
   * Keeps every write back until {@link Connection.release}: a stream whose missed events come
   * from the peers gets `connect-finish` (which says whether they all came) and them before
   * anything live. What waits counts against the write-buffer limit.
   * @internal
   */
  hold(): void {
    this.#held ??= [];
  }

  /**
   * Writes `first` (the protocol frame `connect-finish`, then `events` replayed events),
   * then what waited since {@link Connection.hold}.
   * @internal
   */
  release(first: Buffer | string, events: readonly Buffer[]): void {
    const held = this.#held;
    this.#held = undefined;
    this.#heldBytes = 0;
    if (!this.writeProtocol(first)) return;
    for (const frame of events) if (!this.write(frame)) return;
    if (held !== undefined) for (const frame of held) if (!this.#write(frame, 0)) return;
  }

  #write(frame: Buffer, events: number): boolean {
    if (this.#closed) return false;
    if (this.#held !== undefined) {
      this.#held.push(frame);
      this.eventsWritten += events;
      this.#heldBytes += frame.length;
      if (this.#heldBytes > this.#limit) {
        this.close('slow');
        return false;
      }
      return true;
    }
    const direct = this.#direct ?? this.#directWriter();
    let buffered: number;
    if (direct === undefined) {
      // The first frame of a stream goes with its head, in one socket write, where Node allows.
      if (!writeHeadWith(this.#res, frame)) this.#res.write(frame);
      buffered = this.#res.writableLength;
    } else if (!direct.socket.writable) {
      return false; // ended or destroyed under us (client left); 'close' is on its way
    } else {
      if (frame.length > 0) direct.write(frame);
      buffered = direct.bufferedAmount;
    }
    this.eventsWritten += events;
    if (buffered > this.#limit) {
      this.close('slow');
      return false;
    }
    return true;
  }

  #directWriter(): DirectWriter | undefined {
    const socket = directSocketOf(this.#res);
    if (socket !== undefined) this.#direct = new DirectWriter(socket);
    return this.#direct;
  }

  /** Resolves once everything written has been taken by the kernel, or the connection closed. */
  whenDrained(): Promise<void> {
    const res = this.#res;
    if (this.#closed || this.bufferedAmount === 0) return Promise.resolve();
    const socket = this.#direct?.socket;
    return new Promise((resolve) => {
      const done = (): void => {
        clearInterval(poll);
        res.off('drain', done);
        res.off('close', done);
        socket?.off('drain', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
      // Direct writes make the socket, not the response, emit 'drain'.
      socket?.on('drain', done);
      // 'drain' follows only a write that went over the stream's highWaterMark (16 KiB): a
      // smaller backlog empties without any event, so its length is also checked on a timer.
      const poll = setInterval(() => {
        if (this.#closed || this.bufferedAmount === 0) done();
      }, 10);
      poll.unref();
    });
  }

  /** Sends one event to this connection only. Resolves to true if it was written. */
  async send(event: string, data?: unknown): Promise<boolean> {
    return this.write(encodeFrame({ event, data }));
  }

  /**
   * Ends the stream. A client that must stay away (`reconnect: false`) is told why in a
   * `connect-close` frame. One that should come back gets that frame only if it declared it
   * understands it (`reconnectOnClose=1`); any other client (the Java page script, which takes
   * every `connect-close` as final, or a plain `EventSource`) gets a clean end, which makes it
   * reconnect, preceded by a bare `retry:` when `retryMs` is given. A client that left or is too
   * slow to read gets nothing.
   */
  close(reason: CloseReason = 'kick', reconnect = reason !== 'kick' && reason !== 'evicted', retryMs?: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    const res = this.#res;
    if (reason === 'slow' || reason === 'error') {
      res.destroy();
    } else if (reason === 'client') {
      this.#direct?.flush(); // this tick's frames go before the end
      res.end();
    } else if (reconnect && this.client.reconnectOnClose !== true) {
      this.#direct?.flush();
      // `retry:` spreads the reconnects of a shutdown over time (the browser waits that long).
      if (retryMs === undefined) res.end();
      else res.end(encodeRetry(retryMs));
    } else {
      this.#direct?.flush();
      res.end(encodeFrame({ event: 'connect-close', retry: retryMs, data: { connectionId: this.id, reason, reconnect } }));
    }
    this.#direct = undefined;
    this.#onEnd(this, reason);
  }

  /** Records online time on the connection (before it is closed, so `disconnect` listeners see it). */
  recordDurations(record: DurationRecord): void {
    if (record.sessionDuration !== undefined) this.sessionDuration = record.sessionDuration;
    if (record.duration !== undefined) this.attributes.set('duration', record.duration);
  }

  /** Counts a browser request or upload made over this connection. */
  countRequest(kind: 'message' | 'upload'): void {
    if (kind === 'message') this.requests++;
    else this.uploads++;
    this.lastRequestAt = Date.now();
  }

  /** Resolves once the response is finished and its socket released, or after `ms` at the latest. */
  finished(ms: number): Promise<void> {
    const res = this.#res;
    if (res.writableFinished || res.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        res.off('finish', done);
        res.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      res.on('finish', done);
      res.on('close', done);
    });
  }

  /** The socket closed under us (client left, network error). */
  #lost(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#direct = undefined;
    this.#closeReason = 'client';
    this.#onEnd(this, 'client');
  }

  toInfo(): ConnectionInfo {
    const info: ConnectionInfo = {
      id: this.id,
      user: this.user,
      listeners: [...this.listeners],
      ip: this.request.ip,
      domain: this.request.domain,
      userAgent: this.request.userAgent,
      createdAt: this.createdAt,
      expiresAt: this.expiresAt,
      eventsWritten: this.eventsWritten,
      requests: this.requests,
      uploads: this.uploads,
      bufferedAmount: this.closed ? 0 : this.bufferedAmount,
      attributes: this.#attributes === undefined ? {} : Object.fromEntries(this.#attributes),
    };
    const optional = {
      userId: this.userId,
      tenantId: this.tenantId,
      channel: this.channel,
      channels: this.channelCount === 0 ? undefined : this.channels,
      accessTokenHash: this.accessToken === undefined ? undefined : hashToken(this.accessToken),
      clientId: this.client.clientId,
      clientVersion: this.client.clientVersion,
      screen: this.client.screen,
      locationHref: this.client.locationHref,
      accessTime: this.client.accessTime,
      sessionDuration: this.sessionDuration,
      lastRequestAt: this.lastRequestAt,
    };
    for (const [k, v] of Object.entries(optional)) if (v !== undefined) (info as unknown as Record<string, unknown>)[k] = v;
    return info;
  }
}
