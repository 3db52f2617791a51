import type { AckBatcher } from './ack-batcher.js';
import { Backoff } from './backoff.js';
import { sendCloseBeacon } from './beacon.js';
import { channelList, type ChannelMembership } from './channels.js';
import { CLIENT_TRIGGER_CLOSE, SERVER_TRIGGER_CLOSE, type SseCloseTrigger } from './close-trigger.js';
import { connectParams } from './connect-params.js';
import { report, type EventDelivery } from './delivery.js';
import { SseClientError } from './errors.js';
import { urlWith } from './http.js';
import type { ListenerRegistry } from './listeners.js';
import type { OnlineTime } from './online-time.js';
import type { ResolvedOptions } from './options.js';
import type { ParsedEvent } from './parser.js';
import type { SseCloseInfo, SseConnectInfo } from './payloads.js';
import { RecentIds } from './recent-ids.js';
import { WindowResume } from './recovery.js';
import type { RelayedStream } from './relayed-stream.js';
import type { RequestPipeline } from './request-pipeline.js';
import { round, type SseDuration } from './session-clock.js';
import type { SseStateName } from './states.js';
import { readStorage, writeStorage } from './storage.js';
import { EventStream, type StreamHandlers } from './stream.js';
import type { TabGroup } from './tab-group.js';
import { VERSION } from './version.js';
import type { VisibilityGate } from './visibility.js';

/** Evaluated once, when the module is: the Java client's `IMPORT_MODULE_TIMESTAMP`. */
export const IMPORT_MODULE_TIMESTAMP = Date.now();
/** The reconnect base when neither the options nor the server set one (the Java client's). */
export const DEFAULT_RECONNECT_TIME = 5000;
const RECENT_IDS = 1000;
const DEFAULT_HEARTBEAT_MS = 15_000;

type Closed = { connectionId: string; duration: SseDuration };

/** What the lifecycle works with: the client's identity, options and parts (all owned by the client). */
export interface LifecycleParts<Client> {
  /** The public client, handed to `onStateChange`. */
  readonly client: Client;
  readonly o: ResolvedOptions<Client>;
  /** The values sent with `/connect` that identify the client. */
  readonly identity: { clientId: string; accessTimestamp: number; instanceId: string; createTimestamp: number };
  readonly listeners: ListenerRegistry;
  readonly channels: ChannelMembership;
  readonly online: OnlineTime;
  readonly acks: AckBatcher;
  readonly delivery: EventDelivery;
  readonly requests: RequestPipeline;
  readonly visibility: VisibilityGate;
  /** The tab group, when this tab shares its stream. */
  tabs(): TabGroup | undefined;
  /** The tab-sharing chunk is on its way: no stream opens meanwhile (this tab may turn out a follower). */
  tabsLoading(): boolean;
}

/**
 * The connection's lifecycle: opening the stream, `connect-finish`, the server's
 * `connect-close`, drops and reconnects with backoff (or the server's `retry:`), opening and
 * closing with the tab's visibility, and the close beacon. The client (`Sse`, sse.ts) keeps the
 * public surface and its parts and asks this for the state.
 */
export class Lifecycle<Client> {
  /** Ordinary events' resume point and de-duplication (the server's recovery window). */
  readonly resume = new WindowResume();
  /** Durable ids seen lately (a resent one is acknowledged again, shown once). */
  readonly #recent = new RecentIds(RECENT_IDS);
  readonly #backoff: Backoff;
  lastId: string;
  failure: unknown;
  openInfo: SseConnectInfo | undefined;
  endInfo: SseCloseInfo | undefined;
  #state: SseStateName = 'idle';
  #wanted = false;
  #stream: EventStream | RelayedStream | undefined;
  #connectionId: string | undefined;
  #connectedAt = 0;
  /** The resume point the open (or opening) stream was asked with. */
  #resumedFrom = '';
  /** The server's last `retry:` since `connect-finish`: the delay of the next reconnect. */
  #retryHint: number | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];

  readonly #p: LifecycleParts<Client>;

  constructor(p: LifecycleParts<Client>, lastEventId: string | undefined, reconnectBase: () => number) {
    this.#p = p;
    this.lastId = lastEventId ?? readStorage(p.o.windowGlobal, 'session', this.#storageKey('lastEventId')) ?? '';
    this.#backoff = new Backoff(reconnectBase, () => p.o.maxReconnectTime);
  }

  get stage(): SseStateName {
    return this.#state;
  }

  get wanted(): boolean {
    return this.#wanted;
  }

  /** The open connection's id (`connect-finish`), or undefined. */
  get connId(): string | undefined {
    return this.#connectionId;
  }

  isOpen(): boolean {
    return this.#state === 'open';
  }

  /** Resolves once connected; rejects when destroyed or closed by the server for good. */
  whenOpen(): Promise<void> {
    if (this.isOpen()) return Promise.resolve();
    if (this.#state === 'destroyed') return Promise.reject(destroyedError());
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  start(): void {
    if (this.#state === 'destroyed') return;
    this.#wanted = true;
    this.#clearReconnectTimer();
    this.#p.tabs()?.start();
    this.reconcile();
  }

  /** Stops until {@link connect}; `destroy` for good. Answers whether it was still alive. */
  stop(reason: string, state: 'closed' | 'destroyed'): boolean {
    if (this.#state === 'destroyed') return false;
    this.#wanted = false;
    this.#clearReconnectTimer();
    const closed = this.#teardown(true, reason);
    this.#p.tabs()?.stop();
    this.#setState(state);
    if (closed !== undefined) this.#clientClosed(closed, reason);
    this.#p.online.clear();
    return true;
  }

  /** The page goes away (or into the back-forward cache): close with a beacon, come back on `pageshow`. */
  pageHidden(): void {
    if (this.#stream === undefined) return;
    const closed = this.#teardown(true, 'unload');
    this.#setState('closed');
    if (closed !== undefined) this.#clientClosed(closed, 'unload');
  }

  /** Before the client moves to another system: the current stream closes (with a beacon). */
  leaveSystem(): void {
    const closed = this.#teardown(true, 'switchURL');
    this.#clearReconnectTimer();
    if (closed !== undefined) this.#clientClosed(closed, 'switchURL');
  }

  /** After the client moved to another system: that system's resume point, a fresh start. */
  enterSystem(): void {
    this.lastId = readStorage(this.#p.o.windowGlobal, 'session', this.#storageKey('lastEventId')) ?? '';
    this.#recent.clear();
    this.#p.online.reload();
    this.openInfo = undefined;
    this.#backoff.reset();
    this.reconcile();
  }

  /** This tab became the leader: the relayed stream gives way to a real one, at once. */
  elected(): void {
    if (this.#stream !== undefined && !(this.#stream instanceof EventStream)) this.#teardown(false, 'leader');
    this.#clearReconnectTimer();
    this.reconcile();
  }

  /** The browser is back online: skip the rest of the current backoff. */
  retryNow(): void {
    this.#p.requests.retryNow();
    if (this.#reconnectTimer !== undefined) {
      this.#clearReconnectTimer();
      this.#backoff.reset();
      this.reconcile();
    }
  }

  /** A request found connection `id` gone. */
  connectionLost(id: string, error: unknown): void {
    if (id === this.#connectionId) this.#streamLost(error);
  }

  /** Whether a stream should be open now: wanted, and the tab in use or requests waiting. */
  #shouldBeOpen(): boolean {
    const tabs = this.#p.tabs();
    return this.#wanted && (this.#p.visibility.active || this.#p.requests.pending > 0 || (tabs?.isLeader === true && tabs.followersAttached));
  }

  /** Opens or closes the stream to match {@link #shouldBeOpen}. */
  reconcile(): void {
    // Until the tab-sharing chunk is here this tab does not know whether it leads: it waits.
    if (this.#state === 'destroyed' || this.#p.tabsLoading()) return;
    if (this.#shouldBeOpen()) {
      if (this.#stream === undefined && this.#reconnectTimer === undefined) this.#open();
      return;
    }
    this.#clearReconnectTimer();
    const reason = this.#wanted ? 'hidden' : 'close';
    const closed = this.#teardown(true, reason);
    if (this.#wanted || this.#state !== 'idle') this.#setState('closed');
    if (closed !== undefined) this.#clientClosed(closed, reason);
  }

  #open(): void {
    const { o, identity } = this.#p;
    const tabs = this.#p.tabs();
    const shared = tabs?.isLeader === true ? tabs.connectState() : undefined;
    const params = connectParams(
      {
        sessionDuration: this.#p.online.total(),
        keepaliveTime: o.keepaliveTime,
        clientId: identity.clientId,
        clientVersion: VERSION,
        accessTime: identity.accessTimestamp,
        listeners: shared?.listeners ?? this.#p.listeners.serverNames(),
        channels: shared?.channels ?? this.#p.channels.list,
        useWindowEventBus: o.useWindowEventBus,
        importModuleTime: IMPORT_MODULE_TIMESTAMP,
        instanceTime: identity.createTimestamp,
        instanceId: identity.instanceId,
        ack: o.ack,
        lastEventId: this.lastId,
        recover: (this.#resumedFrom = this.resume.from),
      },
      o.query,
    );
    this.#setState('connecting');
    const handlers: StreamHandlers = {
      onEvent: (event) => this.#onEvent(stream, event),
      onRetry: (ms) => {
        if (stream === this.#stream) this.#retryHint = ms;
      },
      onEnd: (error) => {
        // A stream that ends without connect-close (a lifetime or a shutdown for clients that
        // do not declare `reconnectOnClose`, a proxy, a crash) is a drop like any other.
        if (stream === this.#stream) this.#streamLost(error ?? new SseClientError('ERR_SSE_STREAM_ENDED', 'Stream ended'));
      },
    };
    // A follower tab takes the leader's stream; the leader (or a tab on its own) opens one.
    const stream =
      tabs !== undefined && !tabs.isLeader
        ? tabs.follow(handlers)
        : new EventStream(urlWith(o.url, '/connect', params), this.#credentials(), handlers, o.requestTimeout);
    this.#stream = stream;
    stream.start();
  }

  #onEvent(stream: EventStream | RelayedStream, event: ParsedEvent): void {
    if (stream !== this.#stream) return;
    const tabs = this.#p.tabs();
    if (event.type !== 'connect-finish' && stream instanceof EventStream) tabs?.relay(event);
    switch (event.type) {
      case 'connect-finish':
        this.#onConnectFinish(stream, event);
        break;
      case 'connect-close':
        this.#onConnectClose(event);
        break;
      case 'sse-channels': {
        const list = channelList(this.#parse(event.data));
        if (list !== undefined) {
          tabs?.serverPushed(list);
          this.#p.channels.adopt(list);
          tabs?.stateChanged();
        }
        this.#deliver(event, false);
        break;
      }
      case 'sse-set-duration':
        this.#p.online.set(Number((this.#parse(event.data) as { duration?: unknown } | undefined)?.duration));
        this.#deliver(event, false);
        break;
      default:
        this.#onAppEvent(event);
    }
  }

  #onConnectFinish(stream: EventStream | RelayedStream, event: ParsedEvent): void {
    const { delivery, online } = this.#p;
    const info = (this.#parse(event.data) ?? {}) as SseConnectInfo;
    const channels = channelList(info);
    if (channels !== undefined) this.#p.channels.admitted(channels);
    if (stream instanceof EventStream) this.#p.tabs()?.opened(event.data, channels ?? []);
    this.openInfo = info;
    this.#connectionId = String(info.connectionId);
    this.#connectedAt = Date.now();
    // connect-finish carries the server's default `retry:`; only a later one is a hint.
    this.#retryHint = undefined;
    const heartbeat = typeof info.heartbeatMs === 'number' && info.heartbeatMs > 0 ? info.heartbeatMs : DEFAULT_HEARTBEAT_MS;
    // Three missed heartbeats: the server or the network path is gone without a word.
    stream.setIdleLimit(Math.max(heartbeat * 3, 1000));
    this.#backoff.reset();
    this.#p.acks.enable();
    this.#setState('open');
    online.sync();
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.resolve();
    this.#p.requests.connected();
    this.#deliver(event, false);
    const recovery = this.resume.finished(info, stream instanceof EventStream ? this.#resumedFrom : '');
    delivery.deliver(delivery.message('sse-recovery', this.#p.o.json.stringify(recovery)), false);
    if (stream === this.#stream) online.startIdleChecks();
  }

  #onConnectClose(event: ParsedEvent): void {
    const info = (this.#parse(event.data) ?? {}) as SseCloseInfo;
    this.endInfo = info;
    const trigger: SseCloseTrigger = {
      whoTriggerClose: SERVER_TRIGGER_CLOSE,
      closeReason: typeof info.reason === 'string' ? info.reason : 'server-close',
    };
    this.#deliver(event, false, trigger);
    if (this.#state === 'destroyed' || this.#stream === undefined) return;
    // The server already ended the stream: no beacon needed.
    this.#teardown(false, 'server');
    if (info.reconnect === false) {
      this.#wanted = false;
      this.#setState('closed');
      const err = new SseClientError('ERR_SSE_CLOSED_BY_SERVER', `Closed by the server (${String(info.reason ?? 'unknown')}), no reconnect`);
      this.failure = err;
      this.#p.requests.rejectWaiting(err);
      this.rejectWaiters(err);
      return;
    }
    // The server's `retry:` spreads a shutdown; a lifetime is jittered by the server already.
    this.#scheduleReconnect(this.#takeRetryHint() ?? (info.reason === 'expired' ? Math.random() * 1000 : undefined));
  }

  #onAppEvent(event: ParsedEvent): void {
    const id = event.id;
    if (id === undefined || id === '') {
      this.#deliver(event, true);
      return;
    }
    if (WindowResume.is(id)) {
      // An ordinary event: shown once (a replay may overlap what came live), never acknowledged.
      if (this.resume.take(id)) this.#deliver(event, true);
      return;
    }
    this.lastId = id;
    writeStorage(this.#p.o.windowGlobal, 'session', this.#storageKey('lastEventId'), id);
    if (!this.#recent.has(id)) {
      this.#recent.add(id);
      this.#deliver(event, true);
    }
    // Acknowledged after the listeners ran, and again for a duplicate (the server resent it
    // because it did not get the first ack).
    if (this.#p.o.ack) this.#p.acks.add(id);
  }

  /** After a client-side close: the page turns inactive, and `connect-close` handlers hear it was the client. */
  #clientClosed(closed: Closed, reason: string): void {
    const { delivery } = this.#p;
    this.#p.online.closed(closed.duration);
    const data = this.#p.o.json.stringify({ connectionId: closed.connectionId, reason });
    delivery.deliver(delivery.message('connect-close', data, this.lastId), false, {
      whoTriggerClose: CLIENT_TRIGGER_CLOSE,
      closeReason: reason,
    });
  }

  /** The stream ended or proved dead: reconnect (after the server's `retry:` if it sent one, else with backoff). */
  #streamLost(error: unknown): void {
    if (this.#stream === undefined || this.#state === 'destroyed') return;
    this.failure = error;
    this.#teardown(false, 'lost');
    this.#scheduleReconnect(this.#takeRetryHint());
  }

  #takeRetryHint(): number | undefined {
    const hint = this.#retryHint;
    this.#retryHint = undefined;
    return hint;
  }

  #scheduleReconnect(delay?: number): void {
    if (!this.#wanted) {
      this.#setState('closed');
      return;
    }
    this.#clearReconnectTimer();
    this.#setState('connecting');
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.reconcile();
    }, delay ?? this.#backoff.next());
    // Hidden with nothing to send: no need to come back yet.
    if (!this.#shouldBeOpen()) this.reconcile();
  }

  /**
   * Drops the current stream. With `beacon`, tells the server (the connection may be closed
   * locally before the server notices) and what this connection's online time was. Answers
   * the connection that was open, with its online time just before, if there was one.
   */
  #teardown(beacon: boolean, reason: string): Closed | undefined {
    const stream = this.#stream;
    if (stream === undefined) return undefined;
    const { online } = this.#p;
    this.#stream = undefined;
    online.stopIdleChecks();
    if (stream instanceof EventStream) this.#p.tabs()?.ended(reason);
    // A follower's connection is the leader's: only the leader tells the server it is over.
    if (!(stream instanceof EventStream)) beacon = false;
    const connectionId = this.#connectionId;
    let closed: Closed | undefined;
    if (connectionId !== undefined) {
      this.#p.acks.flush();
      closed = { connectionId, duration: online.duration() };
      this.#connectionId = undefined;
      online.sync();
      if (beacon) {
        const duration = String(round((Date.now() - this.#connectedAt) / 1000));
        const fields = {
          clientId: this.#p.identity.clientId,
          connectionId,
          reason,
          sseVersion: VERSION,
          duration,
          sessionDuration: String(online.total()),
        };
        sendCloseBeacon(this.#p.o.url, fields, this.#credentials());
      }
    }
    stream.close();
    return closed;
  }

  /** Hands a stream's event to the listeners (through the intercepts with `intercept`: app events). */
  #deliver(event: ParsedEvent, intercept: boolean, trigger?: SseCloseTrigger): void {
    const { delivery } = this.#p;
    delivery.deliver(delivery.message(event.type, event.data, event.lastEventId), intercept, trigger);
  }

  #setState(state: SseStateName): void {
    if (this.#state === 'destroyed' || this.#state === state) return;
    this.#state = state;
    const listener = this.#p.o.onStateChange;
    if (listener === undefined) return;
    try {
      listener(state, this.#p.client);
    } catch (err) {
      report(err);
    }
  }

  #parse(text: string): unknown {
    try {
      return this.#p.o.json.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }

  #credentials(): RequestCredentials {
    return this.#p.o.withCredentials ? 'include' : 'same-origin';
  }

  #storageKey(what: string): string {
    return `sse:${what}:${this.#p.o.url}`;
  }

  #clearReconnectTimer(): void {
    if (this.#reconnectTimer === undefined) return;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }

  rejectWaiters(err: unknown): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}

/** What `ready()` and waiting requests reject with after `destroy()`. */
export function destroyedError(): SseClientError {
  return new SseClientError('ERR_SSE_DESTROYED', 'Destroyed');
}
