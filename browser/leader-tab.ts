import { answerChannels } from './channels.js';
import type { HttpAnswer } from './http.js';
import type { ParsedEvent } from './parser.js';
import { rateLimitedFor } from './rate-limit.js';
import { TabAcks } from './tab-acks.js';
import { errorAnswer, ok, toHttpAnswer, unknownConnection, type TabAnswer, type TabMessage, type TabRequest, type TabState } from './tab-bus.js';
import type { TabLink } from './tab-link.js';

interface Follower {
  state: TabState;
  /** The last durable event id the tab saw. */
  since: string;
  /** It was handed the stream: acks wait for it (before, the durable events after `since` reach it with the stream). */
  opened: boolean;
  watch: AbortController;
}

/** What the leader gets from its group beyond {@link TabLink}: a watch on another tab's lock. */
export interface LeaderLink extends TabLink {
  /** Calls `gone` once tab `id` is gone (closed, crashed); abort to stop watching. */
  watch(id: string, gone: () => void): AbortController;
}

/**
 * The leader role of a tab in a group: it holds the stream, opens it with the union of every
 * attached tab's listeners and channels, relays each frame over the bus, makes the
 * connection's listener and channel changes for all tabs (counted per tab: the connection
 * leaves a channel only when no tab holds it), and acknowledges a durable message only once
 * every tab attached when it arrived has delivered it (or left).
 */
export class LeaderTab {
  readonly #followers = new Map<string, Follower>();
  /** The open stream's `connect-finish` data. */
  #finish: string | undefined;
  readonly #serverListeners = new Set<string>();
  #serverChannels: string[] = [];
  readonly #acks: TabAcks;
  #chain: Promise<unknown> = Promise.resolve();
  /** A sync waiting out a rate limit's `Retry-After` (a leave the server refused for now). */
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;
  /** Channels this tab is leaving: no longer its own while the connection leaves them. */
  #ownLeaving: string[] | undefined;
  #stopped = false;

  readonly #link: LeaderLink;

  constructor(link: LeaderLink) {
    this.#link = link;
    this.#acks = new TabAcks((ids) => link.host.ack(ids));
  }

  /** Tabs other than this one use the stream. */
  get followersAttached(): boolean {
    return this.#followers.size > 0;
  }

  stateChanged(): void {
    this.#background(() => this.#sync());
  }

  delivered(ids: string[]): void {
    this.#acks.delivered(this.#link.id, ids);
  }

  request(req: TabRequest): Promise<HttpAnswer> {
    return this.#serial(() => this.#handle(this.#link.id, req)).then(toHttpAnswer);
  }

  /** The tab leaves the group (the stream ends with it). */
  stop(): void {
    this.ended('left');
    this.#stopped = true;
    if (this.#resyncTimer !== undefined) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = undefined;
  }

  /** What the connect asks for, the union over the tabs (recorded as what the connection has). */
  connectState(): TabState {
    const union = this.#union();
    this.#serverListeners.clear();
    for (const name of union.listeners) this.#serverListeners.add(name);
    return union;
  }

  /** The stream is open; bring the followers' channels in, then hand them the stream. */
  opened(data: string, channels: string[]): void {
    this.#finish = data;
    this.#setServerChannels(channels);
    const tabs = [...this.#followers.keys()];
    this.#background(async () => {
      await this.#admit(tabs);
      await this.#sync();
      if (this.#finish !== data) return;
      for (const to of tabs) {
        const f = this.#followers.get(to);
        if (f !== undefined) this.#open(to, data, f.since);
      }
    });
  }

  /** One frame of the stream, for the followers (durable ones are acked once they confirm). */
  relay(event: ParsedEvent): void {
    if (event.id !== undefined && event.id !== '') {
      const tabs = [this.#link.id];
      for (const [id, f] of this.#followers) if (f.opened) tabs.push(id);
      this.#acks.arrived(event as ParsedEvent & { id: string }, tabs);
    }
    if (this.#followers.size === 0) return;
    this.#link.post({ t: 'event', from: this.#link.id, event });
  }

  /** The stream is gone; the followers come back (and are counted again) when it reopens. */
  ended(reason: string): void {
    this.#finish = undefined;
    this.#acks.clear();
    this.#serverListeners.clear();
    this.#serverChannels = [];
    if (this.#followers.size === 0) return;
    for (const f of this.#followers.values()) f.watch.abort();
    this.#followers.clear();
    this.#link.post({ t: 'end', from: this.#link.id, reason });
  }

  /** The server pushed the connection's channel list (`sse-channels`). */
  serverPushed(channels: string[]): void {
    const before = new Set(this.#serverChannels);
    const now = new Set(channels);
    for (const f of this.#followers.values()) {
      f.state.channels = [...f.state.channels.filter((c) => now.has(c)), ...channels.filter((c) => !before.has(c))];
    }
    this.#serverChannels = [...channels];
  }

  onMessage(m: TabMessage): void {
    const host = this.#link.host;
    switch (m.t) {
      case 'attach': {
        const known = this.#followers.get(m.from);
        if (known !== undefined) Object.assign(known, { state: m.state, since: m.since, opened: false });
        else
          this.#followers.set(m.from, { state: m.state, since: m.since, opened: false, watch: this.#link.watch(m.from, () => this.#gone(m.from)) });
        host.attachedChanged();
        const data = this.#finish;
        if (data === undefined) return;
        this.#background(async () => {
          await this.#admit([m.from]);
          await this.#sync();
          if (this.#finish === data && this.#followers.has(m.from)) this.#open(m.from, data, m.since);
        });
        return;
      }
      case 'state': {
        const f = this.#followers.get(m.from);
        if (f === undefined) return;
        f.state = m.state;
        this.#background(() => this.#sync());
        return;
      }
      case 'detach':
        this.#gone(m.from);
        return;
      case 'delivered':
        this.#acks.delivered(m.from, m.ids);
        return;
      case 'req':
        this.#serial(() => this.#handle(m.from, m.req)).then(
          (answer) => this.#link.post({ t: 'res', from: this.#link.id, to: m.from, id: m.id, answer }),
          (err: unknown) => this.#link.post({ t: 'res', from: this.#link.id, to: m.from, id: m.id, answer: errorAnswer(err) }),
        );
        return;
      default:
    }
  }

  /** Hands a tab the stream: its `connect-finish`, then the durable events after its own last one. */
  #open(to: string, data: string, since: string): void {
    const f = this.#followers.get(to);
    if (f !== undefined) f.opened = true;
    this.#link.post({ t: 'open', from: this.#link.id, to, data });
    for (const event of this.#acks.after(since)) this.#link.post({ t: 'event', from: this.#link.id, to, event });
  }

  /** A follower left (detached, closed, crashed): stop waiting for its acks and drop what only it held. */
  #gone(id: string): void {
    const f = this.#followers.get(id);
    if (f === undefined) return;
    f.watch.abort();
    this.#followers.delete(id);
    this.#acks.left(id);
    this.#background(() => this.#sync());
    this.#link.host.attachedChanged();
  }

  /** The connection's leave was refused for now (rate limit): sync again once the server allows it. */
  #resyncAfter(ms: number): void {
    if (this.#resyncTimer !== undefined) return;
    this.#resyncTimer = setTimeout(() => {
      this.#resyncTimer = undefined;
      if (!this.#stopped) this.#background(() => this.#sync());
    }, ms);
  }

  /** {@link #serial} with nobody waiting for the result (a failure is mended by the next change or connect). */
  #background(fn: () => Promise<unknown>): void {
    this.#serial(fn).catch(() => undefined);
  }

  /** Runs `fn` after every earlier change of the connection (they must not interleave). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #stateOf(tab: string): TabState | undefined {
    return tab === this.#link.id ? this.#link.host.state() : this.#followers.get(tab)?.state;
  }

  #union(): TabState {
    const own = this.#link.host.state();
    const listeners = new Set(own.listeners);
    const channels = new Set(own.channels.filter((c) => !this.#ownLeaving?.includes(c)));
    for (const f of this.#followers.values()) {
      for (const n of f.state.listeners) listeners.add(n);
      for (const c of f.state.channels) channels.add(c);
    }
    return { listeners: [...listeners], channels: [...channels] };
  }

  #setServerChannels(channels: string[]): void {
    this.#serverChannels = [...channels];
    this.#link.post({ t: 'server-channels', from: this.#link.id, channels });
    this.#link.host.serverChannels(channels);
  }

  /** Brings these tabs' channels into the connection (on attach, as the connect does: denied ones dropped). */
  async #admit(tabs: string[]): Promise<void> {
    for (const tab of tabs) {
      const f = this.#followers.get(tab);
      if (f === undefined || this.#link.host.connectionId() === undefined) continue;
      const missing = f.state.channels.filter((c) => !this.#serverChannels.includes(c));
      // Join is all-or-nothing: one at a time, so a denied channel does not keep out the others.
      for (const channel of missing) await this.#join([channel]).catch(() => undefined);
      f.state.channels = f.state.channels.filter((c) => this.#serverChannels.includes(c));
    }
  }

  async #join(channels: string[]): Promise<HttpAnswer> {
    const answer = await this.#link.host.post('/connect/join.do', { channels });
    const list = answer.response.ok ? answerChannels(answer) : undefined;
    if (list !== undefined) this.#setServerChannels(list);
    return answer;
  }

  /** The connection's listeners and channels follow the union of the tabs'. */
  async #sync(): Promise<HttpAnswer | undefined> {
    const host = this.#link.host;
    if (this.#stopped || host.connectionId() === undefined) return undefined;
    const union = this.#union();
    const want = new Set(union.listeners);
    const add = union.listeners.filter((n) => !this.#serverListeners.has(n));
    const remove = [...this.#serverListeners].filter((n) => !want.has(n));
    let last: HttpAnswer | undefined;
    if (add.length > 0) {
      last = await host.post('/connect/addListener.do', { listener: add });
      if (last.response.ok) for (const n of add) this.#serverListeners.add(n);
    }
    if (remove.length > 0) {
      last = await host.post('/connect/removeListener.do', { listener: remove });
      if (last.response.ok) for (const n of remove) this.#serverListeners.delete(n);
    }
    const held = new Set(union.channels);
    const leave = this.#serverChannels.filter((c) => !held.has(c));
    if (leave.length > 0) {
      const answer = await host.post('/connect/leave.do', { channels: leave });
      const list = answer.response.ok ? answerChannels(answer) : undefined;
      if (list !== undefined) this.#setServerChannels(list);
      const retryAfter = rateLimitedFor(answer);
      if (retryAfter !== undefined) this.#resyncAfter(retryAfter);
    }
    return last;
  }

  async #handle(tab: string, req: TabRequest): Promise<TabAnswer> {
    const state = this.#stateOf(tab);
    if (state === undefined || this.#link.host.connectionId() === undefined) return unknownConnection();
    if (req.op === 'listeners') {
      if (tab !== this.#link.id) state.listeners = req.names;
      const last = await this.#sync();
      if (last !== undefined && !last.response.ok) return { status: last.response.status, body: last.body };
      return ok({ listener: [...this.#serverListeners] });
    }
    let channels = state.channels;
    if (req.op === 'join') {
      const missing = req.channels.filter((c) => !this.#serverChannels.includes(c));
      if (missing.length > 0) {
        const answer = await this.#join(missing);
        if (!answer.response.ok) return { status: answer.response.status, body: answer.body };
      }
      channels = [...new Set([...channels, ...req.channels])];
      if (tab !== this.#link.id) state.channels = channels;
    } else {
      channels = channels.filter((c) => !req.channels.includes(c));
      if (tab !== this.#link.id) state.channels = channels;
      else this.#ownLeaving = req.channels;
      await this.#sync();
      this.#ownLeaving = undefined;
    }
    return { ...ok({ channels }), server: [...this.#serverChannels] };
  }
}
