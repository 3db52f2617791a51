import { AckBatcher } from './ack-batcher.js';
import { Backoff } from './backoff.js';
import { SseClientError, SseRequestError } from './errors.js';
import { dispatchOnWindow } from './event-bus.js';
import { post, urlWith } from './http.js';
import { resolveAccessTimestamp, resolveClientId } from './identity.js';
import { ListenerRegistry, PROTOCOL_EVENTS, toEntries, type SseEventListener, type SseListenerInput } from './listeners.js';
import { normalizeUrl, resolveOptions, stringQuery, type ResolvedOptions, type SseOptions } from './options.js';
import type { ParsedEvent } from './parser.js';
import { RecentIds } from './recent-ids.js';
import { RequestPipeline } from './request-pipeline.js';
import { round, SessionClock } from './session-clock.js';
import { readStorage, writeStorage } from './storage.js';
import { EventStream } from './stream.js';
import { VERSION } from './version.js';
import { VisibilityGate } from './visibility.js';

/**
 * Where the client is:
 * - `idle`: created with `autoConnect: false`, `connect()` not called yet;
 * - `connecting`: a connect is in flight or a reconnect is scheduled;
 * - `open`: `connect-finish` received, requests go out at once;
 * - `closed`: no stream (closed by `close()`, by the server with `reconnect: false`, or a hidden tab);
 * - `destroyed`: `destroy()` was called; final.
 */
export type SseState = 'idle' | 'connecting' | 'open' | 'closed' | 'destroyed';

/** The `connect-finish` payload. */
export interface SseConnectInfo {
  connectionId: string;
  serverTime?: number;
  reconnectTime?: number;
  name?: string;
  enableCluster?: boolean;
  version?: string;
  heartbeatMs?: number;
  expiresAt?: number;
  [key: string]: unknown;
}

/** The `connect-close` payload. */
export interface SseCloseInfo {
  connectionId?: string;
  reason?: string;
  reconnect?: boolean;
  [key: string]: unknown;
}

/** What {@link sseEventListener} resolves to: a connected {@link Sse}. */
export type SseConnection = Sse;

const RECENT_IDS = 1000;
const DEFAULT_RECONNECT_TIME = 5000;
const DEFAULT_HEARTBEAT_MS = 15_000;
const APP_PATH = /^[\w\-./]{1,200}$/;

/**
 * The browser client: one Server-Sent Events connection to one system (base path), with
 * listeners by event name and requests over the connection.
 *
 * - A visible tab is connected; a hidden one closes its stream after `hiddenGraceTime`.
 * - Every drop is followed by a reconnect with exponential backoff and jitter, also a server
 *   close with `reconnect: true`; only `reconnect: false`, `close()` and `destroy()` stop it.
 * - `send`, `upload` and listener changes made while not connected wait in a bounded queue
 *   and go out in call order after the next `connect-finish`; every promise settles.
 * - Durable events (those with an `id:`) are acknowledged in batches and de-duplicated.
 *
 * @example
 * const sse = new Sse({ url: '/sse/hr', query: { 'access-token': token }, eventListeners: {
 *   bell: (e) => show(JSON.parse(e.data)),
 * } });
 * const answer = await sse.send('read-all', { ids: [1, 2] });
 */
export default class Sse {
  /** Version of this client. */
  static readonly version: string = VERSION;

  /** This browser's id (sent as `clientId`). */
  readonly clientId: string;
  /** When this visit began (sent as `accessTime`). */
  readonly accessTimestamp: number;

  readonly #o: ResolvedOptions;
  readonly #listeners = new ListenerRegistry();
  readonly #requests: RequestPipeline;
  readonly #reconnectBackoff: Backoff;
  readonly #visibility: VisibilityGate;
  readonly #acks: AckBatcher;
  readonly #recent = new RecentIds(RECENT_IDS);
  #clock: SessionClock;
  #state: SseState = 'idle';
  #wanted = false;
  #stream: EventStream | undefined;
  #connectionId: string | undefined;
  #connectedAt = 0;
  #connectInfo: SseConnectInfo | undefined;
  #closeInfo: SseCloseInfo | undefined;
  #lastEventId: string;
  #lastError: unknown;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters: { resolve: (sse: Sse) => void; reject: (err: unknown) => void }[] = [];
  readonly #onPageHide = (): void => {
    if (this.#stream === undefined) return;
    this.#teardown(true, 'unload');
    this.#setState('closed');
  };
  readonly #onPageShow = (e: PageTransitionEvent): void => {
    if (e.persisted) this.#reconcile();
  };
  readonly #onOnline = (): void => this.#retryNow();

  /** Creates the client and, unless `autoConnect: false`, connects (once the tab is visible). */
  constructor(options: SseOptions = {}) {
    this.#o = resolveOptions(options);
    this.clientId = resolveClientId(options.clientId);
    this.accessTimestamp = resolveAccessTimestamp(options.accessTimestamp);
    this.#lastEventId = options.lastEventId ?? readStorage('session', this.#storageKey('lastEventId')) ?? '';
    this.#clock = new SessionClock(this.#storageKey('sessionDuration'));
    const reconnectBase = (): number => this.#o.reconnectTime ?? this.#connectInfo?.reconnectTime ?? DEFAULT_RECONNECT_TIME;
    this.#reconnectBackoff = new Backoff(reconnectBase, () => this.#o.maxReconnectTime);
    this.#requests = new RequestPipeline(
      {
        connectionId: () => (this.isActive() ? this.#connectionId : undefined),
        connectionLost: (id, error) => {
          if (id === this.#connectionId) this.#streamLost(error);
        },
        changed: () => this.#reconcile(),
        failed: (error) => (this.#lastError = error),
      },
      {
        maxQueueSize: () => this.#o.maxQueueSize,
        queueTimeout: () => this.#o.queueTimeout,
        retryBase: () => Math.min(reconnectBase(), 1000),
        retryMax: () => this.#o.maxReconnectTime,
      },
    );
    this.#visibility = new VisibilityGate(
      () => this.#o.hiddenGraceTime,
      () => this.#reconcile(),
    );
    this.#acks = new AckBatcher((ids) => this.#sendAcks(ids));
    if (options.eventListeners !== undefined) this.#listeners.add(toEntries(options.eventListeners));
    if (typeof window !== 'undefined') {
      window.addEventListener('pagehide', this.#onPageHide);
      window.addEventListener('pageshow', this.#onPageShow);
      window.addEventListener('online', this.#onOnline);
    }
    if (options.autoConnect !== false) this.connect();
  }

  // ---- state ---------------------------------------------------------------------------

  /** The system's base path, e.g. `/sse/hr`. */
  get url(): string {
    return this.#o.url;
  }

  get state(): SseState {
    return this.#state;
  }

  /** The server's id of the current connection (undefined when not connected). */
  get connectionId(): string | undefined {
    return this.#connectionId;
  }

  /** The last `connect-finish` payload. */
  get connectInfo(): SseConnectInfo | undefined {
    return this.#connectInfo;
  }

  /** The last `connect-close` payload. */
  get closeInfo(): SseCloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Why the last connect or request attempt failed (for diagnostics; a success does not clear it). */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** Id of the last durable event received: the resume point of the next connect. */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** Requests waiting for a connection plus requests in flight. */
  get pending(): number {
    return this.#requests.pending;
  }

  /** Seconds online with this system in this tab (what `sessionDuration` reports). */
  get sessionDuration(): number {
    return this.#clock.total();
  }

  /** Names listened to (what the server is told). */
  get listenerNames(): string[] {
    return this.#listeners.serverNames();
  }

  /** True when connected: `connect-finish` received and the stream still open. */
  isActive(): boolean {
    return this.#state === 'open';
  }

  /**
   * Resolves with this client once it is connected (at once if it is). Rejects if it is
   * destroyed or the server closes it with `reconnect: false` first.
   */
  ready(): Promise<this> {
    if (this.isActive()) return Promise.resolve(this);
    if (this.#state === 'destroyed') return Promise.reject(destroyedError());
    return new Promise((resolve, reject) => this.#waiters.push({ resolve: () => resolve(this), reject }));
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /** Connects (now if the tab is visible, else when it becomes visible) and keeps reconnecting. */
  connect(): void {
    if (this.#state === 'destroyed') return;
    this.#wanted = true;
    this.#clearReconnectTimer();
    this.#reconcile();
  }

  /**
   * Closes the stream (telling the server by beacon) and stops reconnecting until
   * {@link connect}. Waiting requests stay queued until their timeout.
   */
  close(reason = 'close'): void {
    if (this.#state === 'destroyed') return;
    this.#wanted = false;
    this.#clearReconnectTimer();
    this.#teardown(true, reason);
    this.#setState('closed');
  }

  /**
   * Closes for good: the stream, every timer and every page listener; pending requests and
   * `ready()` reject with `ERR_SSE_DESTROYED`.
   */
  destroy(): void {
    if (this.#state === 'destroyed') return;
    this.#teardown(true, 'destroy');
    this.#wanted = false;
    this.#setState('destroyed');
    this.#clearReconnectTimer();
    this.#acks.disable();
    this.#visibility.stop();
    if (typeof window !== 'undefined') {
      window.removeEventListener('pagehide', this.#onPageHide);
      window.removeEventListener('pageshow', this.#onPageShow);
      window.removeEventListener('online', this.#onOnline);
    }
    const err = destroyedError();
    this.#requests.stop(err);
    this.#rejectWaiters(err);
    this.#listeners.clear();
  }

  /**
   * Moves to another system (base path): closes the current stream and connects to `url`.
   * Listeners are kept; waiting requests go to the new system.
   */
  switchURL(url: string): void {
    const next = normalizeUrl(url);
    if (next === this.#o.url || this.#state === 'destroyed') return;
    this.#teardown(true, 'switchURL');
    this.#clearReconnectTimer();
    this.#o.url = next;
    this.#lastEventId = readStorage('session', this.#storageKey('lastEventId')) ?? '';
    this.#recent.clear();
    this.#clock = new SessionClock(this.#storageKey('sessionDuration'));
    this.#connectInfo = undefined;
    this.#reconnectBackoff.reset();
    this.#reconcile();
  }

  /** Replaces the extra parameters (e.g. a refreshed `access-token`); used from the next request on. */
  setQuery(query: SseOptions['query']): void {
    this.#o.query = stringQuery(query);
  }

  // ---- listeners -----------------------------------------------------------------------

  /**
   * Adds listeners: `(name, fn)`, or a map `{ name: fn | fn[] | null }`, or an array of names.
   * New names are sent to the server (queued while offline). Resolves to the server's listener
   * list (or the local one when no change was needed).
   */
  addListener(nameOrMap: string | SseListenerInput | readonly string[], fn?: SseEventListener | null): Promise<string[]> {
    return this.#changeListeners('addListener', nameOrMap, fn);
  }

  /**
   * Removes listeners: `(name, fn)` removes one function, `(name)` or `{ name: null }` the
   * whole name. Names left without functions are removed from the server too.
   */
  removeListener(nameOrMap: string | SseListenerInput | readonly string[], fn?: SseEventListener | null): Promise<string[]> {
    return this.#changeListeners('removeListener', nameOrMap, fn);
  }

  #changeListeners(
    kind: 'addListener' | 'removeListener',
    nameOrMap: string | SseListenerInput | readonly string[],
    fn: SseEventListener | null | undefined,
  ): Promise<string[]> {
    if (this.#state === 'destroyed') return Promise.reject(destroyedError());
    let names: string[];
    try {
      const entries = toEntries(nameOrMap, fn);
      names = (kind === 'addListener' ? this.#listeners.add(entries) : this.#listeners.remove(entries)).filter((name) => !PROTOCOL_EVENTS.has(name));
    } catch (err) {
      return Promise.reject(err);
    }
    if (names.length === 0) return Promise.resolve(this.#listeners.serverNames());
    return this.#requests
      .submit((connectionId, signal) => this.#post(`/connect/${kind}.do`, {}, JSON.stringify({ connectionId, listener: names }), {}, signal))
      .then((answer) => listenerList(answer) ?? this.#listeners.serverNames());
  }

  // ---- requests ------------------------------------------------------------------------

  /**
   * Sends `body` as JSON to the app's `onMessage(path, …)` over this connection. Resolves to
   * the server's answer (its JSON envelope, by default `{success, code, data, …}`).
   *
   * While connected with nothing queued the request goes out at once (several may then run
   * concurrently). Otherwise it waits in the queue (`maxQueueSize`, `queueTimeout`) and is
   * sent after the next connect, one at a time in call order. A request that did not reach
   * the server is retried; an answer with an error status rejects with
   * {@link SseRequestError} and is not retried (the server may have acted on it).
   */
  send(path: string, body?: unknown, query?: SseOptions['query'], headers?: Record<string, string>): Promise<unknown> {
    if (typeof path !== 'string' || !APP_PATH.test(path) || path.includes('..')) {
      return Promise.reject(new TypeError(`Invalid path ${JSON.stringify(path)}`));
    }
    let json: string;
    try {
      json = JSON.stringify(body === undefined ? {} : body);
    } catch (err) {
      return Promise.reject(err);
    }
    const extra = stringQuery(query);
    return this.#requests.submit((connectionId, signal) =>
      this.#post(`/connect/message/${path}.do`, { ...extra, connectionId }, json, headers, signal),
    );
  }

  /**
   * Uploads a `FormData` (files and fields) to the app's `onUpload(path, …)`. Same queueing
   * and answers as {@link send}.
   */
  upload(path: string, formData: FormData, query?: SseOptions['query'], headers?: Record<string, string>): Promise<unknown> {
    if (typeof path !== 'string' || !APP_PATH.test(path) || path.includes('..')) {
      return Promise.reject(new TypeError(`Invalid path ${JSON.stringify(path)}`));
    }
    if (!(formData instanceof FormData)) return Promise.reject(new TypeError('upload() needs a FormData body'));
    const extra = stringQuery(query);
    return this.#requests.submit((connectionId, signal) =>
      this.#post(`/connect/upload/${path}.do`, { ...extra, connectionId }, formData, headers, signal),
    );
  }

  #post(
    path: string,
    query: Record<string, string>,
    body: string | FormData,
    headers: Record<string, string> | undefined,
    signal: AbortSignal,
  ): Promise<unknown> {
    return post(urlWith(this.#o.url, path, { ...this.#o.query, ...query }), body, {
      credentials: this.#credentials(),
      headers,
      signal,
      timeout: this.#o.requestTimeout,
    });
  }

  /** The browser is back online: skip the rest of the current backoff. */
  #retryNow(): void {
    this.#requests.retryNow();
    if (this.#reconnectTimer !== undefined) {
      this.#clearReconnectTimer();
      this.#reconnectBackoff.reset();
      this.#reconcile();
    }
  }

  // ---- the stream ----------------------------------------------------------------------

  /** Whether a stream should be open now: wanted, and the tab in use or requests waiting. */
  #shouldBeOpen(): boolean {
    return this.#wanted && (this.#visibility.active || this.#requests.pending > 0);
  }

  /** Opens or closes the stream to match {@link #shouldBeOpen}. */
  #reconcile(): void {
    if (this.#state === 'destroyed') return;
    if (this.#shouldBeOpen()) {
      if (this.#stream === undefined && this.#reconnectTimer === undefined) this.#open();
      return;
    }
    this.#clearReconnectTimer();
    this.#teardown(true, this.#wanted ? 'hidden' : 'close');
    if (this.#wanted || this.#state !== 'idle') this.#setState('closed');
  }

  #open(): void {
    const params: Record<string, string> = {
      ...this.#o.query,
      clientId: this.clientId,
      clientVersion: VERSION,
      accessTime: String(this.accessTimestamp),
      listeners: this.#listeners.serverNames().join(','),
      sessionDuration: String(this.#clock.total()),
    };
    if (typeof screen !== 'undefined') params.screen = `${screen.width}x${screen.height}`;
    if (typeof location !== 'undefined') params.locationHref = location.href.slice(0, 2048);
    if (this.#o.ack) params.ack = '1';
    if (this.#lastEventId !== '') params.lastEventId = this.#lastEventId;
    if (this.#o.keepaliveTime !== undefined) params.keepaliveTime = String(this.#o.keepaliveTime);
    this.#setState('connecting');
    const stream: EventStream = new EventStream(
      urlWith(this.#o.url, '/connect', params),
      this.#credentials(),
      {
        onEvent: (event) => this.#onEvent(stream, event),
        onEnd: (error) => {
          if (stream === this.#stream) this.#streamLost(error ?? new SseClientError('ERR_SSE_STREAM_ENDED', 'The server ended the stream'));
        },
      },
      this.#o.requestTimeout,
    );
    this.#stream = stream;
    stream.start();
  }

  #onEvent(stream: EventStream, event: ParsedEvent): void {
    if (stream !== this.#stream) return;
    switch (event.type) {
      case 'connect-finish':
        this.#onConnectFinish(stream, event);
        break;
      case 'connect-close':
        this.#onConnectClose(event);
        break;
      case 'sse-set-duration':
        this.#clock.set(Number((parseJson(event.data) as { duration?: unknown } | undefined)?.duration));
        this.#deliver(event, false);
        break;
      default:
        this.#onAppEvent(event);
    }
  }

  #onConnectFinish(stream: EventStream, event: ParsedEvent): void {
    const info = (parseJson(event.data) ?? {}) as SseConnectInfo;
    this.#connectInfo = info;
    this.#connectionId = String(info.connectionId);
    this.#connectedAt = Date.now();
    this.#clock.start();
    const heartbeat = typeof info.heartbeatMs === 'number' && info.heartbeatMs > 0 ? info.heartbeatMs : DEFAULT_HEARTBEAT_MS;
    // Three missed heartbeats: the server or the network path is gone without a word.
    stream.setIdleLimit(Math.max(heartbeat * 3, 1000));
    this.#reconnectBackoff.reset();
    this.#acks.enable();
    this.#setState('open');
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.resolve(this);
    this.#requests.connected();
    this.#deliver(event, false);
  }

  #onConnectClose(event: ParsedEvent): void {
    const info = (parseJson(event.data) ?? {}) as SseCloseInfo;
    this.#closeInfo = info;
    this.#deliver(event, false);
    if (this.#state === 'destroyed') return;
    // The server already ended the stream: no beacon needed.
    this.#teardown(false, 'server');
    if (info.reconnect === false) {
      this.#wanted = false;
      this.#setState('closed');
      const err = new SseClientError(
        'ERR_SSE_CLOSED_BY_SERVER',
        `The server closed the connection (${String(info.reason ?? 'unknown')}) and asked not to reconnect`,
      );
      this.#lastError = err;
      this.#requests.rejectWaiting(err);
      this.#rejectWaiters(err);
      return;
    }
    // A planned rotation (lifetime over) is jittered by the server already: come back quickly.
    this.#scheduleReconnect(info.reason === 'expired' ? Math.random() * 1000 : undefined);
  }

  #onAppEvent(event: ParsedEvent): void {
    const id = event.id;
    if (id === undefined || id === '') {
      this.#deliver(event, true);
      return;
    }
    this.#lastEventId = id;
    writeStorage('session', this.#storageKey('lastEventId'), id);
    if (!this.#recent.has(id)) {
      this.#recent.add(id);
      this.#deliver(event, true);
    }
    // Acknowledged after the listeners ran, and again for a duplicate (the server resent it
    // because it did not get the first ack).
    if (this.#o.ack) this.#acks.add(id);
  }

  /** Runs intercepts (application events only), listeners, then the window event bus. */
  #deliver(event: ParsedEvent, intercept: boolean): void {
    const registered = this.#listeners.has(event.type);
    if (!registered && !(intercept && this.#o.intercepts.length > 0)) return;
    const message = new MessageEvent<string>(event.type, {
      data: event.data,
      lastEventId: event.lastEventId,
      origin: originOf(this.#o.url),
    });
    if (intercept) {
      for (const fn of this.#o.intercepts) {
        try {
          if (fn.call(this, message) === false) return;
        } catch (err) {
          report(err);
        }
      }
    }
    for (const fn of this.#listeners.get(event.type)) {
      try {
        fn.call(this, message);
      } catch (err) {
        report(err);
      }
    }
    if (registered && this.#o.useWindowEventBus) dispatchOnWindow(message, this.#o.url);
  }

  /** The stream ended or proved dead: reconnect with backoff. */
  #streamLost(error: unknown): void {
    if (this.#stream === undefined || this.#state === 'destroyed') return;
    this.#lastError = error;
    this.#teardown(false, 'lost');
    this.#scheduleReconnect();
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
      this.#reconcile();
    }, delay ?? this.#reconnectBackoff.next());
    // Hidden with nothing to send: no need to come back yet.
    if (!this.#shouldBeOpen()) this.#reconcile();
  }

  /**
   * Drops the current stream. With `beacon`, tells the server (the connection may be closed
   * locally before the server notices) and what this connection's online time was.
   */
  #teardown(beacon: boolean, reason: string): void {
    const stream = this.#stream;
    if (stream === undefined) return;
    this.#stream = undefined;
    const connectionId = this.#connectionId;
    if (connectionId !== undefined) {
      this.#acks.flush();
      this.#clock.stop();
      if (beacon) {
        this.#beacon({
          connectionId,
          clientId: this.clientId,
          reason,
          duration: String(round((Date.now() - this.#connectedAt) / 1000)),
          sessionDuration: String(this.#clock.total()),
        });
      }
    }
    this.#connectionId = undefined;
    stream.close();
  }

  #beacon(fields: Record<string, string>): void {
    const url = `${this.#o.url}/connect/disconnect.do`;
    const body = new URLSearchParams(fields);
    let sent = false;
    try {
      sent = typeof navigator !== 'undefined' && typeof navigator.sendBeacon === 'function' && navigator.sendBeacon(url, body);
    } catch {
      // fall back to fetch below
    }
    if (!sent) {
      fetch(url, { method: 'POST', body, keepalive: true, credentials: this.#credentials() }).catch(() => undefined);
    }
  }

  #sendAcks(ids: string[]): void {
    const connectionId = this.#connectionId;
    if (connectionId === undefined) return;
    post(urlWith(this.#o.url, '/connect/ack.do', this.#o.query), JSON.stringify({ connectionId, ids }), {
      credentials: this.#credentials(),
      timeout: 0,
      keepalive: true,
    }).catch((err: unknown) => {
      // A server without durable delivery has no ack endpoint: stop asking until the next connection.
      if (err instanceof SseRequestError && err.status === 404 && err.code !== 'ERR_SSE_UNKNOWN_CONNECTION') this.#acks.disable();
    });
  }

  // ---- helpers -------------------------------------------------------------------------

  #setState(state: SseState): void {
    if (this.#state === 'destroyed' || this.#state === state) return;
    this.#state = state;
    const listener = this.#o.onStateChange;
    if (listener === undefined) return;
    try {
      listener(state, this);
    } catch (err) {
      report(err);
    }
  }

  #credentials(): RequestCredentials {
    return this.#o.withCredentials ? 'include' : 'same-origin';
  }

  #storageKey(what: string): string {
    return `sse:${what}:${this.#o.url}`;
  }

  #clearReconnectTimer(): void {
    if (this.#reconnectTimer === undefined) return;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }

  #rejectWaiters(err: unknown): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}

function destroyedError(): SseClientError {
  return new SseClientError('ERR_SSE_DESTROYED', 'The client was destroyed');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function listenerList(answer: unknown): string[] | undefined {
  const data = (answer as { data?: { listener?: unknown } } | null)?.data;
  const list = data?.listener;
  return Array.isArray(list) && list.every((x) => typeof x === 'string') ? (list as string[]) : undefined;
}

function originOf(url: string): string {
  try {
    return new URL(url, location.href).origin;
  } catch {
    return '';
  }
}

function report(err: unknown): void {
  if (typeof reportError === 'function') reportError(err);
  else console.error(err);
}
