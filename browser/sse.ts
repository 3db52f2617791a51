import { AckBatcher } from './ack-batcher.js';
import type { SseCloseInfo, SseConnectInfo } from './payloads.js';
import { ChannelMembership, type SsePresence } from './channels.js';
import { CLIENT_TRIGGER_CLOSE, SERVER_TRIGGER_CLOSE } from './close-trigger.js';
import { ConnectionCalls } from './connection-calls.js';
import { EventDelivery } from './delivery.js';
import { answerBody, isUnknownConnection, type HttpAnswer } from './http.js';
import { randomId, resolveAccessTimestamp, resolveClientId } from './identity.js';
import { DEFAULT_RECONNECT_TIME, destroyedError, IMPORT_MODULE_TIMESTAMP, Lifecycle } from './lifecycle.js';
import { ListenerRegistry, toEntries, type SseEventListener, type SseListenerInput } from './listeners.js';
import { OnlineTime } from './online-time.js';
import { DEFAULT_OPTIONS, normalizeUrl, resolveOptions, stringQuery, type ResolvedOptions, type SseOptions } from './options.js';
import type { SseQueuedRequest } from './outbox.js';
import { rateLimitedFor } from './rate-limit.js';
import type { SseRecoveryInfo } from './recovery.js';
import { RequestPipeline } from './request-pipeline.js';
import type { SseDuration } from './session-clock.js';
import { readyStateOf, STATE_CLOSED, STATE_CONNECTING, STATE_OPEN, type SseReadyState, type SseStateName } from './states.js';
import type { SseEventMap, SseTypedListener } from './typed-events.js';
import type { TabGroup } from './tab-group.js';
import { loadTabSharing, type TabSharing } from './tab-loader.js';
import { canShareTabs } from './tab-support.js';
import { VERSION } from './version.js';
import { VisibilityGate } from './visibility.js';

export type { SseCloseInfo, SseConnectInfo } from './payloads.js';

/**
 * What {@link sseEventListener} resolves to: a connected {@link Sse}. With an `Events` map,
 * `addListener(name, fn)` and `listen(name, fn)` also take typed listeners of its names.
 */
export type SseConnection<Events extends object = SseEventMap> = {
  addListener<K extends keyof Events & string>(name: K, fn: SseTypedListener<Events[K]>): Promise<Response>;
  listen<K extends keyof Events & string>(name: K, fn: SseTypedListener<Events[K]>): Promise<string[]>;
} & Sse;

/** The listener argument of `addListener` and friends: `(name, fn)`, a map, or an array of names. */
export type SseListenerChange = string | SseListenerInput | readonly string[];

/**
 * The browser client: one Server-Sent Events connection to one system (base path), with
 * listeners by event name and requests over the connection. A drop-in for the Java
 * library's `Sse` class (same statics, options, fields, methods and events), with its
 * defects fixed:
 *
 * - A visible tab is connected; a hidden one closes its stream after `hiddenGraceTime`.
 * - Every drop is followed by a reconnect with backoff and jitter, also a server close with
 *   `reconnect: true` or a stream that simply ends; only `reconnect: false`, `close()` and
 *   `destroy()` stop it.
 * - `send`, `upload` and listener changes made while not connected wait in a bounded queue
 *   and go out in call order after the next `connect-finish`; a request that did not reach
 *   the server is retried; every promise settles.
 * - Durable events (those with an `id:`) are acknowledged in batches and de-duplicated.
 *
 * @example
 * const sse = new Sse({ url: '/sse/hr', query: { 'access-token': token }, eventListeners: {
 *   bell: (e) => show(JSON.parse(e.data)),
 * } });
 * const answer = await sse.send('read-all', { ids: [1, 2] }).then((r) => r.json());
 */
export default class Sse {
  /** Version of this client. */
  static readonly version: string = VERSION;
  /** The defaults of every option; a page may change them before creating clients. */
  static readonly DEFAULT_OPTIONS: SseOptions = DEFAULT_OPTIONS;
  /** Reconnect delay when neither the options nor the server give one, in ms. */
  static readonly DEFAULT_RECONNECT_TIME = DEFAULT_RECONNECT_TIME;
  /** When this module was evaluated (ms since epoch; sent as `clientImportModuleTime`). */
  static readonly IMPORT_MODULE_TIMESTAMP: number = IMPORT_MODULE_TIMESTAMP;
  /** {@link Sse.state}: connecting, or waiting to reconnect. */
  static readonly STATE_CONNECTING = STATE_CONNECTING;
  /** {@link Sse.state}: connected (`connect-finish` received). */
  static readonly STATE_OPEN = STATE_OPEN;
  /** {@link Sse.state}: not connected and not trying to. */
  static readonly STATE_CLOSED = STATE_CLOSED;
  /** `whoTriggerClose` of a close the server made. */
  static readonly SERVER_TRIGGER_CLOSE = SERVER_TRIGGER_CLOSE;
  /** `whoTriggerClose` of a close this client made. */
  static readonly CLIENT_TRIGGER_CLOSE = CLIENT_TRIGGER_CLOSE;

  /** This browser's id (sent as `clientId`). */
  readonly clientId: string;
  /** When this visit began (sent as `accessTime`). */
  readonly accessTimestamp: number;
  /** This instance's random id (sent as `clientInstanceId`). */
  readonly instanceId: string = randomId();
  /** When this instance was created (ms since epoch; sent as `clientInstanceTime`). */
  readonly createTimestamp: number = Date.now();

  readonly #o: ResolvedOptions<Sse>;
  readonly #listeners = new ListenerRegistry();
  readonly #requests: RequestPipeline;
  readonly #calls: ConnectionCalls;
  readonly #visibility: VisibilityGate;
  readonly #online: OnlineTime;
  readonly #acks: AckBatcher;
  readonly #delivery: EventDelivery;
  /** Opening, reconnecting and closing the stream (lifecycle.ts). */
  readonly #life: Lifecycle<Sse>;
  readonly #channels = new ChannelMembership();
  /** The tabs sharing one stream (`shareAcrossTabs`), when the browser can. */
  #tabs: TabGroup | undefined;
  /** The tab-sharing chunk, once loaded (tab-loader.ts). */
  #tabSharing: TabSharing | undefined;
  /** The chunk is on its way: no stream opens meanwhile (this tab may turn out a follower). */
  #tabsLoading = false;
  /** `close()` was called and `connect()` not since. */
  #closedByPage = false;
  readonly #onPageHide = (): void => this.#life.pageHidden();
  readonly #onPageShow = (e: PageTransitionEvent): void => {
    if (e.persisted) this.#life.reconcile();
  };
  readonly #onOnline = (): void => this.#life.retryNow();

  /** Creates the client and, unless `autoConnect: false`, connects (once the tab is visible). */
  constructor(options: SseOptions<Sse> = {}) {
    this.#o = resolveOptions(options);
    const win = this.#o.windowGlobal;
    this.clientId = resolveClientId(win, options.clientId);
    this.accessTimestamp = resolveAccessTimestamp(win, options.accessTimestamp);
    const reconnectBase = (): number => this.reconnectDuration;
    this.#requests = new RequestPipeline(
      {
        connectionId: () => (this.isActive() ? this.#life.connId : undefined),
        connectionLost: (id, error) => this.#life.connectionLost(id, error),
        changed: () => this.#life.reconcile(),
        failed: (error) => (this.#life.failure = error),
      },
      this.#o,
      () => Math.min(reconnectBase(), 1000),
    );
    this.#calls = new ConnectionCalls(this.#requests, this.#o, () => this.#tabs);
    this.#visibility = new VisibilityGate(this.#o.documentGlobal, this.#o, () => this.#life.reconcile());
    this.#online = new OnlineTime(win, this.#o.documentGlobal, this.#o, {
      key: () => this.#durationKey(),
      connected: () => this.#life.connId !== undefined && this.#life.stage === 'open',
      changed: (change) => this.#delivery.deliver(this.#delivery.message('sse-change-active', change), false, undefined, true),
    });
    this.#acks = new AckBatcher((ids) => this.#sendAcks(ids));
    this.#delivery = new EventDelivery(this, this.#listeners, this.#o);
    this.#life = new Lifecycle<Sse>(
      {
        client: this,
        o: this.#o,
        identity: this,
        listeners: this.#listeners,
        channels: this.#channels,
        online: this.#online,
        acks: this.#acks,
        delivery: this.#delivery,
        requests: this.#requests,
        visibility: this.#visibility,
        tabs: () => this.#tabs,
        tabsLoading: () => this.#tabsLoading,
      },
      options.lastEventId,
      reconnectBase,
    );
    if (options.eventListeners != null) this.#listeners.add(toEntries(options.eventListeners));
    win?.addEventListener('pagehide', this.#onPageHide);
    win?.addEventListener('pageshow', this.#onPageShow);
    win?.addEventListener('online', this.#onOnline);
    if (this.#o.shareAcrossTabs && canShareTabs()) this.#loadTabs();
    if (this.#o.autoConnect) this.connect();
    if (win !== undefined) {
      // The Java client's globals: pages reach the last client as `window.sse`.
      const globals = win as unknown as { sse?: Sse; Sse?: typeof Sse };
      globals.sse = this;
      globals.Sse ??= Sse;
    }
  }

  // ---- state ---------------------------------------------------------------------------

  /** The system's base path, e.g. `/sse/hr`. */
  get url(): string {
    return this.#o.url;
  }

  /** `Sse.STATE_CONNECTING` (0), `STATE_OPEN` (1) or `STATE_CLOSED` (2), as `EventSource.readyState`. */
  get state(): SseReadyState {
    return readyStateOf(this.#life.stage);
  }

  /** The state by name, finer than {@link state} (`idle`, `connecting`, `open`, `closed`, `destroyed`). */
  get stateName(): SseStateName {
    return this.#life.stage;
  }

  /** `close()` or `destroy()` was called (and `connect()` not since). */
  get destroyed(): boolean {
    return this.#life.stage === 'destroyed' || this.#closedByPage;
  }

  /** The server's id of the current connection (undefined when not connected). */
  get connectionId(): string | undefined {
    return this.#life.connId;
  }

  /** The server's name of the system (`connect-finish.name`); `''` before the first connect. */
  get connectionName(): string {
    return typeof this.#life.openInfo?.name === 'string' ? this.#life.openInfo.name : '';
  }

  /** The server's clock when the last connection opened (`connect-finish.serverTime`). */
  get connectionTimestamp(): number | undefined {
    return this.#life.openInfo?.serverTime;
  }

  /** The server's version (`connect-finish.version`). */
  get serverVersion(): string | undefined {
    return this.#life.openInfo?.version;
  }

  /** The base reconnect delay in ms: the `reconnectTime` option, else the server's, else 5000. */
  get reconnectDuration(): number {
    return this.#o.reconnectTime ?? this.#life.openInfo?.reconnectTime ?? DEFAULT_RECONNECT_TIME;
  }

  /** The last `connect-finish` payload. */
  get connectResponse(): SseConnectInfo | undefined {
    return this.#life.openInfo;
  }

  /** The last `connect-close` payload the server sent. */
  get closeResponse(): SseCloseInfo | undefined {
    return this.#life.endInfo;
  }

  /** 0.1's name of {@link connectResponse}. */
  get connectInfo(): SseConnectInfo | undefined {
    return this.#life.openInfo;
  }

  /** 0.1's name of {@link closeResponse}. */
  get closeInfo(): SseCloseInfo | undefined {
    return this.#life.endInfo;
  }

  /** The user moved or clicked within `leaveTimeout` (idle detection); false after a close. */
  get isPageActive(): boolean {
    return this.#online.active;
  }

  /** The requests waiting for a connection, oldest first (a snapshot). */
  get retryQueue(): SseQueuedRequest[] {
    return this.#requests.waiting();
  }

  /** Why the last connect or request attempt failed (for diagnostics; a success does not clear it). */
  get lastError(): unknown {
    return this.#life.failure;
  }

  /**
   * Whether the last connect got every ordinary event missed since the one before
   * (`connect-finish.recovered`); `false` on a first connect, when the server's window was
   * exceeded or lost: then the page should fetch its state afresh. Each connect also raises
   * `sse-recovery` with {@link SseRecoveryInfo} as data. `undefined` before the first connect.
   */
  get recovered(): boolean | undefined {
    return this.#life.resume.info?.recovered;
  }

  /** What the last `connect-finish` said of recovery: `recovered`, `resumed` (a resume was asked), `epoch`. */
  get recovery(): SseRecoveryInfo | undefined {
    return this.#life.resume.info;
  }

  /** Id of the last durable event received: the resume point of the next connect. */
  get lastEventId(): string {
    return this.#life.lastId;
  }

  /** Requests waiting for a connection plus requests in flight. */
  get pending(): number {
    return this.#requests.pending;
  }

  /** Seconds online with this system in this tab, running period included (what `sessionDuration` reports). */
  get sessionDuration(): number {
    return this.#online.total();
  }

  /** The channels this page joined at runtime ({@link join}); restored on every reconnect. */
  get channels(): string[] {
    return this.#channels.list;
  }

  /** With `shareAcrossTabs`: this tab holds the stream the group's tabs share. */
  get isTabLeader(): boolean {
    return this.#tabs?.isLeader ?? false;
  }

  /** Names listened to (what the server is told). */
  get listenerNames(): string[] {
    return this.#listeners.serverNames();
  }

  /** True when connected: `connect-finish` received and the stream still open. */
  isActive(): boolean {
    return this.#life.isOpen();
  }

  /**
   * Online time in seconds: `sessionDuration` counted before the running period (what
   * `sessionStorage[sseDurationKey]` holds) and `duration`, the running period (0 while
   * paused: not connected, or the user idle).
   */
  getDuration(): SseDuration {
    return this.#online.duration();
  }

  /** A copy of the listener map: name → function, array of functions, or `null` for a name alone. */
  getEventListeners(): Record<string, SseEventListener | SseEventListener[] | null> {
    return this.#listeners.snapshot();
  }

  /** `connectionName:state:createTimestamp`, as the Java client. */
  toString(): string {
    return `${this.connectionName}:${this.state}:${this.createTimestamp}`;
  }

  /**
   * Resolves with this client once it is connected (at once if it is). Rejects if it is
   * destroyed or the server closes it with `reconnect: false` first.
   */
  ready(): Promise<this> {
    return this.#life.whenOpen().then(() => this);
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /** Connects (now if the tab is visible, else when it becomes visible) and keeps reconnecting. */
  connect(): void {
    if (this.#life.stage === 'destroyed') return;
    this.#closedByPage = false;
    this.#life.start();
  }

  /**
   * Closes the stream (telling the server by beacon), stops reconnecting until
   * {@link connect}, and forgets the online time (`sseDurationKey`). Waiting requests stay
   * queued until their timeout.
   */
  close(reason = 'close'): void {
    if (this.#life.stage === 'destroyed') return;
    this.#closedByPage = true;
    this.#life.stop(reason, 'closed');
  }

  /**
   * Closes for good (`close('destroy')`), and removes every timer and page listener;
   * pending requests and `ready()` reject with `ERR_SSE_DESTROYED`.
   */
  destroy(): void {
    if (!this.#life.stop('destroy', 'destroyed')) return;
    this.#acks.disable();
    this.#visibility.stop();
    this.#online.dispose();
    const win = this.#o.windowGlobal;
    win?.removeEventListener('pagehide', this.#onPageHide);
    win?.removeEventListener('pageshow', this.#onPageShow);
    win?.removeEventListener('online', this.#onOnline);
    const err = destroyedError();
    this.#requests.stop(err);
    this.#life.rejectWaiters(err);
    this.#listeners.clear();
  }

  /**
   * Moves to another system (base path): closes the current stream and connects to `url`.
   * Listeners are kept; waiting requests go to the new system.
   */
  switchURL(url: string): void {
    const next = normalizeUrl(url);
    if (next === this.#o.url || this.#life.stage === 'destroyed') return;
    this.#life.leaveSystem();
    this.#o.url = next;
    this.#channels.clear();
    if (this.#tabs !== undefined) {
      this.#tabs.stop();
      this.#tabs = this.#tabGroup();
      if (this.#life.wanted) this.#tabs.start();
    }
    this.#life.enterSystem();
  }

  /** Replaces the extra parameters (e.g. a refreshed `access-token`); used from the next request on. */
  setQuery(query: SseOptions['query']): void {
    this.#o.query = stringQuery(query);
  }

  // ---- listeners -----------------------------------------------------------------------

  /**
   * Adds listeners: `(name, fn)`, or a map `{ name: fn | fn[] | null }`, or an array of names,
   * and tells the server (`POST …/connect/addListener.do`; queued while not connected).
   * Resolves to that request's fetch `Response` (its JSON: `{data: {listener: [names]}}`).
   */
  addListener(nameOrMap: SseListenerChange, fn?: SseEventListener | null): Promise<Response> {
    return this.#changeListeners('addListener', nameOrMap, fn, true).then((answer) => answer!.response);
  }

  /**
   * Removes listeners: `(name, fn)` removes one function, `(name)`, `{ name: null }` or
   * `[name]` the whole name. Names left without functions are removed from the server too.
   * Resolves to the fetch `Response` of `POST …/connect/removeListener.do`.
   */
  removeListener(nameOrMap: SseListenerChange, fn?: SseEventListener | null): Promise<Response> {
    return this.#changeListeners('removeListener', nameOrMap, fn, true).then((answer) => answer!.response);
  }

  /**
   * {@link addListener}, resolving to the names the server now sends this connection (0.1's
   * `addListener`). Asks the server only when a name is new; rejects with
   * {@link SseRequestError} on an error answer.
   */
  listen(nameOrMap: SseListenerChange, fn?: SseEventListener | null): Promise<string[]> {
    return this.#changeListeners('addListener', nameOrMap, fn, false).then((answer) => this.#listenerList(answer));
  }

  /** {@link removeListener}, resolving to the names the server now sends (0.1's `removeListener`). */
  unlisten(nameOrMap: SseListenerChange, fn?: SseEventListener | null): Promise<string[]> {
    return this.#changeListeners('removeListener', nameOrMap, fn, false).then((answer) => this.#listenerList(answer));
  }

  #changeListeners(
    kind: 'addListener' | 'removeListener',
    nameOrMap: SseListenerChange,
    fn: SseEventListener | null | undefined,
    always: boolean,
  ): Promise<HttpAnswer | undefined> {
    if (this.#life.stage === 'destroyed') return Promise.reject(destroyedError());
    let names: string[];
    try {
      names = this.#listeners.change(kind === 'addListener', toEntries(nameOrMap, fn), always);
    } catch (err) {
      return Promise.reject(err);
    }
    if (names.length === 0 && !always) return Promise.resolve(undefined);
    return this.#calls.listeners(kind, names, () => this.#listeners.serverNames());
  }

  #listenerList(answer: HttpAnswer | undefined): string[] {
    const list = answer === undefined ? undefined : (answerBody(answer) as { data?: { listener?: unknown } } | null)?.data?.listener;
    return Array.isArray(list) && list.every((x) => typeof x === 'string') ? (list as string[]) : this.#listeners.serverNames();
  }

  // ---- channels ------------------------------------------------------------------------

  /**
   * Joins channels at runtime (`POST …/connect/join.do`; queued while not connected). The
   * server's `authorizeChannel` decides, all or nothing. Resolves to {@link channels} once it
   * did; rejects with {@link SseRequestError} (`ERR_SSE_CHANNEL_DENIED`,
   * `ERR_SSE_TOO_MANY_CHANNELS`, …) when it refused, and then nothing changed. Joined channels
   * are asked for again on every reconnect.
   */
  join(...channels: string[]): Promise<string[]> {
    return this.#channelChange('join', channels);
  }

  /** Leaves channels (`POST …/connect/leave.do`); resolves to {@link channels}. */
  leave(...channels: string[]): Promise<string[]> {
    return this.#channelChange('leave', channels);
  }

  /**
   * Who is in a channel this connection is a member of, cluster-wide
   * (`GET …/connect/presence.json`). Rejects with {@link SseRequestError} when the server
   * refuses (403 for a channel this connection is not in).
   */
  presence(channel: string): Promise<SsePresence> {
    return this.#calls.presence(channel);
  }

  #channelChange(op: 'join' | 'leave', channels: string[]): Promise<string[]> {
    if (this.#life.stage === 'destroyed') return Promise.reject(destroyedError());
    return this.#calls.channels(op, channels, this.#channels);
  }

  // ---- requests ------------------------------------------------------------------------

  /**
   * Sends `body` as JSON to the app's `onMessage(path, …)` over this connection
   * (`POST {url}/connect/message/{path}.do`). Resolves to the fetch `Response`, whatever its
   * status (as `fetch`): `send('x', body).then((r) => r.json())`.
   *
   * While connected with nothing queued the request goes out at once (several may then run
   * concurrently). Otherwise it waits in the queue (`maxQueueSize`, `queueTimeout`) and is
   * sent after the next connect, one at a time in call order; it resolves to the Response of
   * that eventual send. A request that did not reach the server (network failure, or a
   * connection the server no longer knows) is sent again; one that may have been processed
   * is not. Rejects with {@link SseClientError} (`ERR_SSE_QUEUE_FULL`, `ERR_SSE_QUEUE_TIMEOUT`,
   * `ERR_SSE_REQUEST_TIMEOUT`, `ERR_SSE_DESTROYED`, …) or a `TypeError` for a bad path.
   */
  send(path: string, body: unknown = {}, query: SseOptions['query'] = {}, headers: Record<string, string> = {}): Promise<Response> {
    return this.#calls.send(path, body, query, headers).then((answer) => answer.response);
  }

  /**
   * {@link send}, resolving to the parsed answer (the server's JSON envelope, by default
   * `{success, code, data, …}`) and rejecting with {@link SseRequestError} on an error status
   * (0.1's `send`).
   */
  sendJson(path: string, body: unknown = {}, query: SseOptions['query'] = {}, headers: Record<string, string> = {}): Promise<unknown> {
    return this.#calls.send(path, body, query, headers).then(answerBody);
  }

  /**
   * Uploads a `FormData` (files and fields) to the app's `onUpload(path, …)`
   * (`POST {url}/connect/upload/{path}.do`). Same queueing as {@link send}; resolves to the
   * fetch `Response`.
   */
  upload(path: string, formData: FormData, query: SseOptions['query'] = {}, headers: Record<string, string> = {}): Promise<Response> {
    return this.#calls.upload(path, formData, query, headers).then((answer) => answer.response);
  }

  /** {@link upload}, resolving to the parsed answer like {@link sendJson} (0.1's `upload`). */
  uploadJson(path: string, formData: FormData, query: SseOptions['query'] = {}, headers: Record<string, string> = {}): Promise<unknown> {
    return this.#calls.upload(path, formData, query, headers).then(answerBody);
  }

  #sendAcks(ids: string[]): void {
    if (this.#tabs !== undefined) this.#tabs.delivered(ids);
    else this.#postAcks(ids);
  }

  #postAcks(ids: string[]): void {
    const connectionId = this.#life.connId;
    if (connectionId === undefined) return;
    this.#calls.ack(connectionId, ids).then(
      (answer) => {
        // A server without durable delivery has no ack endpoint: stop asking until the next connection.
        if (answer.response.status === 404 && !isUnknownConnection(answer)) this.#acks.disable();
        const wait = rateLimitedFor(answer);
        if (wait !== undefined) this.#acks.later(ids, wait);
      },
      () => undefined,
    );
  }

  // ---- helpers -------------------------------------------------------------------------

  /**
   * Loads the tab-sharing chunk; once it is here the tab joins its group and the stream may
   * open. If it cannot be loaded the tab keeps a stream of its own (the reason in `lastError`).
   */
  #loadTabs(): void {
    this.#tabsLoading = true;
    loadTabSharing(this.#o.url).then(
      (sharing) => {
        this.#tabsLoading = false;
        if (this.#life.stage === 'destroyed') return;
        this.#tabSharing = sharing;
        this.#tabs = this.#tabGroup();
        if (this.#life.wanted) this.#tabs.start();
        this.#life.reconcile();
      },
      (err: unknown) => {
        this.#tabsLoading = false;
        this.#life.failure = err;
        this.#life.reconcile();
      },
    );
  }

  /** The group of tabs of this system and query (tabs of other users or systems keep apart). */
  #tabGroup(): TabGroup {
    return this.#tabSharing!.tabGroupFor({
      url: this.#o.url,
      query: this.#o.query,
      life: this.#life,
      listeners: this.#listeners,
      channels: this.#channels,
      calls: this.#calls,
      isActive: () => this.isActive(),
      ack: (ids) => this.#postAcks(ids),
    });
  }

  #durationKey(): string {
    return this.#o.sseDurationKey || `sseDuration${this.#o.url}`;
  }
}
