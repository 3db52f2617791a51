import { answerChannels, checkChannels, type ChannelMembership, type SsePresence } from './channels.js';
import { answerBody, request, urlWith, type HttpAnswer, type PostOptions } from './http.js';
import { stringQuery, type ResolvedOptions, type SseOptions } from './options.js';
import type { RequestPipeline } from './request-pipeline.js';
import type { TabGroup } from './tab-group.js';
import type { TabRequest } from './tab-bus.js';

const APP_PATH = /^[\w\-./]{1,200}$/;

/**
 * The HTTP calls a page makes over its connection, each shaped for its endpoint: app messages
 * and uploads, listener and channel changes, presence (all through the {@link RequestPipeline}:
 * queued while offline, retried when they did not arrive), and the calls that need the
 * connection now (acks, the shared-tabs leader's changes). With shared tabs, listener and
 * channel changes go to the leader tab, which counts them per tab.
 */
export class ConnectionCalls {
  readonly #pipeline: RequestPipeline;
  readonly #o: Omit<ResolvedOptions, 'onStateChange'>;
  readonly #tabs: () => TabGroup | undefined;

  constructor(pipeline: RequestPipeline, o: Omit<ResolvedOptions, 'onStateChange'>, tabs: () => TabGroup | undefined) {
    this.#pipeline = pipeline;
    this.#o = o;
    this.#tabs = tabs;
  }

  /** A message to the app's `onMessage(path, …)`; rejects at once for a bad path. */
  send(path: string, body: unknown, query: SseOptions['query'], headers: Record<string, string>): Promise<HttpAnswer> {
    return this.#app('send', path, () => this.#o.json.stringify(body === undefined ? {} : body), query, headers);
  }

  /** A `FormData` to the app's `onUpload(path, …)`; rejects at once for a bad path or body. */
  upload(path: string, formData: FormData, query: SseOptions['query'], headers: Record<string, string>): Promise<HttpAnswer> {
    const body = (): FormData => {
      if (!(formData instanceof FormData)) throw new TypeError('upload() needs a FormData body');
      return formData;
    };
    return this.#app('upload', path, body, query, headers);
  }

  /** `addListener.do` / `removeListener.do` with `names`; with shared tabs the leader gets `all`, this tab's whole list. */
  listeners(kind: 'addListener' | 'removeListener', names: string[], all: () => string[]): Promise<HttpAnswer> {
    return this.#membership(kind, () => ({ op: 'listeners', names: all() }), { listener: names });
  }

  /**
   * `join.do` / `leave.do`: resolves to this page's channels once the server decided (and
   * `membership` took them), rejects with the server's refusal; bad names throw a TypeError first.
   */
  async channels(op: 'join' | 'leave', names: readonly unknown[], membership: ChannelMembership): Promise<string[]> {
    const channels = checkChannels(names);
    const answer = await this.#membership(op, () => ({ op, channels }), { channels });
    answerBody(answer);
    const own = answerChannels(answer) ?? [];
    membership.setOwn(own);
    // With shared tabs the leader tells the connection's list; alone, it is this page's.
    if (this.#tabs() === undefined) membership.setServer(own);
    return own;
  }

  /**
   * A change of what the connection is a member of (`{kind}.do` with `body`): over the pipeline,
   * through the leader tab when tabs share the connection (it decides for all, `forLeader`).
   */
  #membership(
    kind: 'addListener' | 'removeListener' | 'join' | 'leave',
    forLeader: () => TabRequest,
    body: Record<string, unknown>,
  ): Promise<HttpAnswer> {
    return this.#pipeline.submit({ type: kind }, (connectionId, signal) => {
      const tabs = this.#tabs();
      return tabs !== undefined ? tabs.request(forLeader()) : this.post(`/connect/${kind}.do`, { connectionId, ...body }, signal);
    });
  }

  /** `presence.json` of a channel (a bad name throws a TypeError first). */
  async presence(channel: unknown): Promise<SsePresence> {
    const [name] = checkChannels([channel]) as [string];
    const answer = await this.#pipeline.submit({ type: 'presence' }, (connectionId, signal) =>
      request(urlWith(this.#o.url, '/connect/presence.json', { ...this.#o.query, connectionId, channel: name }), undefined, this.#options(signal)),
    );
    return (answerBody(answer) as { data: SsePresence }).data;
  }

  /** POSTs `body` as JSON now (no queue), with the page's query. */
  post(path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<HttpAnswer> {
    return request(urlWith(this.#o.url, path, this.#o.query), this.#o.json.stringify(body), this.#options(signal));
  }

  /** Acknowledges durable ids; the request may outlive the page. Resolves false when the server has no ack endpoint. */
  ack(connectionId: string, ids: string[]): Promise<HttpAnswer> {
    return request(urlWith(this.#o.url, '/connect/ack.do', this.#o.query), this.#o.json.stringify({ connectionId, ids }), {
      ...this.#options(),
      timeout: 0,
      keepalive: true,
    });
  }

  #app(
    type: 'send' | 'upload',
    path: string,
    makeBody: () => string | FormData,
    query: SseOptions['query'],
    headers: Record<string, string>,
  ): Promise<HttpAnswer> {
    if (typeof path !== 'string' || !APP_PATH.test(path) || path.includes('..'))
      return Promise.reject(new TypeError(`Invalid path ${JSON.stringify(path)}`));
    let body: string | FormData;
    try {
      body = makeBody();
    } catch (err) {
      return Promise.reject(err);
    }
    const extra = stringQuery(query);
    const endpoint = `/connect/${type === 'send' ? 'message' : 'upload'}/${path}.do`;
    return this.#pipeline.submit({ type, path }, (connectionId, signal) =>
      request(urlWith(this.#o.url, endpoint, { ...this.#o.query, ...extra, connectionId }), body, { ...this.#options(signal), headers }),
    );
  }

  #options(signal?: AbortSignal): PostOptions {
    return { credentials: this.#o.withCredentials ? 'include' : 'same-origin', signal, timeout: this.#o.requestTimeout };
  }
}
