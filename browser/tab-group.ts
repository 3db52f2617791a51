import { answerChannels } from './channels.js';
import { SseClientError } from './errors.js';
import type { HttpAnswer } from './http.js';
import { rateLimitedFor } from './rate-limit.js';
import { randomId } from './identity.js';
import type { ParsedEvent } from './parser.js';
import type { RelayedStream, RelayHost } from './relayed-stream.js';
import {
  errorAnswer,
  ok,
  TabBus,
  toHttpAnswer,
  unknownConnection,
  type TabAnswer,
  type TabMessage,
  type TabRequest,
  type TabState,
} from './tab-bus.js';
import { TabAcks } from './tab-acks.js';
import { TabLocks } from './tab-leader.js';

/** What a group needs of the client in its tab. */
export interface TabGroupHost {
  /** This tab became the leader: drop the relayed stream and open a real one. */
  elected(): void;
  /** Tabs attached or left: the leader may open or close the stream (it stays while any tab needs it). */
  attachedChanged(): void;
  /** The leader's connection, while its stream is open. */
  connectionId(): string | undefined;
  /** The last durable event id this tab saw. */
  lastEventId(): string;
  /** This tab's own listener names and channels. */
  state(): TabState;
  /** Leader: POSTs `{connectionId, ...body}` as JSON over the connection, now. */
  post(path: string, body: Record<string, unknown>): Promise<HttpAnswer>;
  /** Leader: acknowledges durable messages to the server. */
  ack(ids: string[]): void;
  /** The connection's channels (the union of the tabs') changed. */
  serverChannels(channels: string[]): void;
}

/** The group of tabs of one system and query: tabs of other users or systems keep apart. */
export function groupName(url: string, query: Record<string, string>): string {
  return `${url}?${new URLSearchParams(Object.entries(query).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))).toString()}`;
}

interface Follower {
  state: TabState;
  /** The last durable event id the tab saw. */
  since: string;
  /** It was handed the stream: acks wait for it (before, the durable events after `since` reach it with the stream). */
  opened: boolean;
  watch: AbortController;
}

/**
 * One stream for all tabs of an origin that use the same system (`shareAcrossTabs`). The tab
 * holding the leader lock opens the stream with the union of every attached tab's listeners
 * and channels and relays each frame over the bus; the other tabs attach to it with a
 * {@link RelayedStream}. Listener and channel changes go through the leader, counted per tab
 * (the connection leaves a channel only when no tab holds it). Sends and uploads need no
 * leader: a tab posts them itself over the shared connection id.
 *
 * Durable messages: the leader acknowledges one only after every tab attached when it arrived
 * has delivered it (or left), so a leader closing in between loses nothing: the next leader's
 * stream gets it again, and each tab drops what it already showed by id.
 */
export class TabGroup implements RelayHost {
  readonly id = randomId();
  #bus: TabBus | undefined;
  #locks: TabLocks | undefined;
  #ownLockHeld = false;
  #leader = false;
  /** Follower: the current leader, as far as known. */
  #leaderId: string | undefined;
  #relayed: RelayedStream | undefined;
  readonly #calls = new Map<number, { req: TabRequest; resolve: (a: HttpAnswer) => void; reject: (e: unknown) => void }>();
  #seq = 0;
  // ---- leader side
  readonly #followers = new Map<string, Follower>();
  /** The open stream's `connect-finish` data. */
  #finish: string | undefined;
  readonly #serverListeners = new Set<string>();
  #serverChannels: string[] = [];
  readonly #acks: TabAcks;
  #chain: Promise<unknown> = Promise.resolve();
  /** A sync waiting out a rate limit's `Retry-After` (a leave the server refused for now). */
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;
  /** Channels this (leader) tab is leaving: no longer its own while the connection leaves them. */
  #ownLeaving: string[] | undefined;

  constructor(
    private readonly name: string,
    private readonly host: TabGroupHost,
  ) {
    this.#acks = new TabAcks((ids) => host.ack(ids));
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** Leader: tabs other than this one use the stream. */
  get followersAttached(): boolean {
    return this.#followers.size > 0;
  }

  /** Joins the group: waits for the leader lock (the stream) and listens to the bus. */
  start(): void {
    if (this.#bus !== undefined) return;
    const locks = new TabLocks(navigator.locks, this.name, this.id);
    this.#locks = locks;
    this.#bus = new TabBus(`sse:${this.name}`, this.id, (m) => this.#onMessage(m));
    void locks.holdOwn().then(() => {
      if (this.#locks !== locks) return;
      this.#ownLockHeld = true;
      if (this.#relayed !== undefined) this.#attachMessage();
    });
    locks.campaign(() => {
      if (this.#locks === locks) this.#elected();
    });
  }

  /** Leaves the group: gives up the lead (the next tab opens the stream) and every lock. */
  stop(): void {
    if (this.#bus === undefined) return;
    this.#relayed?.end('left the group');
    this.#relayed = undefined;
    this.ended('left');
    this.#leader = false;
    this.#leaderId = undefined;
    this.#locks?.stop();
    this.#locks = undefined;
    this.#ownLockHeld = false;
    if (this.#resyncTimer !== undefined) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = undefined;
    this.#bus.close();
    this.#bus = undefined;
    const err = new SseClientError('ERR_SSE_DESTROYED', 'The tab left the group');
    for (const call of this.#calls.values()) call.reject(err);
    this.#calls.clear();
  }

  // ---- follower side -------------------------------------------------------------------

  attach(stream: RelayedStream): void {
    this.#relayed = stream;
    if (this.#ownLockHeld) this.#attachMessage();
  }

  detach(stream: RelayedStream): void {
    if (this.#relayed !== stream) return;
    this.#relayed = undefined;
    if (stream.leader !== undefined) this.#bus?.post({ t: 'detach', from: this.id });
  }

  /** This tab's listeners or channels changed outside a request (the server's list adopted). */
  stateChanged(): void {
    if (!this.#leader && this.#relayed?.leader !== undefined) this.#bus?.post({ t: 'state', from: this.id, state: this.host.state() });
    else if (this.#leader) this.#background(() => this.#sync());
  }

  /** Durable ids this tab delivered: the leader acknowledges them once every tab has. */
  delivered(ids: string[]): void {
    if (this.#leader) this.#acks.delivered(this.id, ids);
    else if (this.#leaderId !== undefined) this.#bus?.post({ t: 'delivered', from: this.id, to: this.#leaderId, ids });
  }

  /** A change of what the shared connection is a member of, decided by the leader. */
  request(req: TabRequest): Promise<HttpAnswer> {
    if (this.#leader) return this.#serial(() => this.#handle(this.id, req)).then(toHttpAnswer);
    return new Promise((resolve, reject) => {
      const id = ++this.#seq;
      this.#calls.set(id, { req, resolve, reject });
      if (this.#leaderId !== undefined) this.#bus?.post({ t: 'req', from: this.id, to: this.#leaderId, id, req });
    });
  }

  // ---- leader side ---------------------------------------------------------------------

  /** Leader: what the connect asks for, the union over the tabs (recorded as what the connection has). */
  connectState(): TabState {
    const union = this.#union();
    this.#serverListeners.clear();
    for (const name of union.listeners) this.#serverListeners.add(name);
    return union;
  }

  /** Leader: the stream is open; bring the followers' channels in, then hand them the stream. */
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

  /** Leader: one frame of the stream, for the followers (durable ones are acked once they confirm). */
  relay(event: ParsedEvent): void {
    if (!this.#leader) return;
    if (event.id !== undefined && event.id !== '') {
      const tabs = [this.id];
      for (const [id, f] of this.#followers) if (f.opened) tabs.push(id);
      this.#acks.arrived(event as ParsedEvent & { id: string }, tabs);
    }
    if (this.#followers.size === 0) return;
    this.#bus?.post({ t: 'event', from: this.id, event });
  }

  /** Leader: the stream is gone; the followers come back (and are counted again) when it reopens. */
  ended(reason: string): void {
    if (!this.#leader) return;
    this.#finish = undefined;
    this.#acks.clear();
    this.#serverListeners.clear();
    this.#serverChannels = [];
    if (this.#followers.size === 0) return;
    for (const f of this.#followers.values()) f.watch.abort();
    this.#followers.clear();
    this.#bus?.post({ t: 'end', from: this.id, reason });
  }

  /** The server pushed the connection's channel list (`sse-channels`). */
  serverPushed(channels: string[]): void {
    if (!this.#leader) return;
    const before = new Set(this.#serverChannels);
    const now = new Set(channels);
    for (const f of this.#followers.values()) {
      f.state.channels = [...f.state.channels.filter((c) => now.has(c)), ...channels.filter((c) => !before.has(c))];
    }
    this.#serverChannels = [...channels];
  }

  // ---- internals -----------------------------------------------------------------------

  #attachMessage(): void {
    this.#bus?.post({ t: 'attach', from: this.id, state: this.host.state(), since: this.host.lastEventId() });
  }

  #elected(): void {
    this.#leader = true;
    this.#leaderId = this.id;
    this.#bus?.post({ t: 'leader', from: this.id });
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const call of calls) this.request(call.req).then(call.resolve, call.reject);
    this.host.elected();
  }

  #onMessage(m: TabMessage): void {
    if (this.#leader) this.#onLeaderMessage(m);
    else this.#onFollowerMessage(m);
  }

  #onFollowerMessage(m: TabMessage): void {
    const relayed = this.#relayed;
    switch (m.t) {
      case 'leader':
        this.#leaderId = m.from;
        for (const [id, call] of this.#calls) this.#bus?.post({ t: 'req', from: this.id, to: m.from, id, req: call.req });
        if (relayed === undefined) return;
        if (relayed.leader === undefined) this.#attachMessage();
        else if (relayed.leader !== m.from) relayed.end('the leader changed');
        return;
      case 'open':
        this.#leaderId = m.from;
        if (relayed !== undefined && (relayed.leader === undefined || relayed.leader === m.from)) relayed.open(m.from, m.data);
        return;
      case 'event':
        if (relayed?.leader === m.from) relayed.feed(m.event);
        return;
      case 'end':
        if (relayed?.leader === m.from) relayed.end(m.reason);
        return;
      case 'server-channels':
        this.host.serverChannels(m.channels);
        return;
      case 'res': {
        const call = this.#calls.get(m.id);
        if (call === undefined) return;
        this.#calls.delete(m.id);
        if (m.answer.server !== undefined) this.host.serverChannels(m.answer.server);
        try {
          call.resolve(toHttpAnswer(m.answer));
        } catch (err) {
          call.reject(err);
        }
        return;
      }
      default:
    }
  }

  #onLeaderMessage(m: TabMessage): void {
    switch (m.t) {
      case 'attach': {
        const known = this.#followers.get(m.from);
        if (known !== undefined) Object.assign(known, { state: m.state, since: m.since, opened: false });
        else
          this.#followers.set(m.from, { state: m.state, since: m.since, opened: false, watch: this.#locks!.watch(m.from, () => this.#gone(m.from)) });
        this.host.attachedChanged();
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
          (answer) => this.#bus?.post({ t: 'res', from: this.id, to: m.from, id: m.id, answer }),
          (err: unknown) => this.#bus?.post({ t: 'res', from: this.id, to: m.from, id: m.id, answer: errorAnswer(err) }),
        );
        return;
      default:
    }
  }

  /** Hands a tab the stream: its `connect-finish`, then the durable events after its own last one. */
  #open(to: string, data: string, since: string): void {
    const f = this.#followers.get(to);
    if (f !== undefined) f.opened = true;
    this.#bus?.post({ t: 'open', from: this.id, to, data });
    for (const event of this.#acks.after(since)) this.#bus?.post({ t: 'event', from: this.id, to, event });
  }

  /** A follower left (detached, closed, crashed): stop waiting for its acks and drop what only it held. */
  #gone(id: string): void {
    const f = this.#followers.get(id);
    if (f === undefined) return;
    f.watch.abort();
    this.#followers.delete(id);
    this.#acks.left(id);
    this.#background(() => this.#sync());
    this.host.attachedChanged();
  }

  /** The connection's leave was refused for now (rate limit): sync again once the server allows it. */
  #resyncAfter(ms: number): void {
    if (this.#resyncTimer !== undefined) return;
    this.#resyncTimer = setTimeout(() => {
      this.#resyncTimer = undefined;
      if (this.#leader) this.#background(() => this.#sync());
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
    return tab === this.id ? this.host.state() : this.#followers.get(tab)?.state;
  }

  #union(): TabState {
    const own = this.host.state();
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
    this.#bus?.post({ t: 'server-channels', from: this.id, channels });
    this.host.serverChannels(channels);
  }

  /** Brings these tabs' channels into the connection (on attach, as the connect does: denied ones dropped). */
  async #admit(tabs: string[]): Promise<void> {
    for (const tab of tabs) {
      const f = this.#followers.get(tab);
      if (f === undefined || this.host.connectionId() === undefined) continue;
      const missing = f.state.channels.filter((c) => !this.#serverChannels.includes(c));
      // Join is all-or-nothing: one at a time, so a denied channel does not keep out the others.
      for (const channel of missing) await this.#join([channel]).catch(() => undefined);
      f.state.channels = f.state.channels.filter((c) => this.#serverChannels.includes(c));
    }
  }

  async #join(channels: string[]): Promise<HttpAnswer> {
    const answer = await this.host.post('/connect/join.do', { channels });
    const list = answer.response.ok ? answerChannels(answer) : undefined;
    if (list !== undefined) this.#setServerChannels(list);
    return answer;
  }

  /** The connection's listeners and channels follow the union of the tabs'. */
  async #sync(): Promise<HttpAnswer | undefined> {
    if (!this.#leader || this.host.connectionId() === undefined) return undefined;
    const union = this.#union();
    const want = new Set(union.listeners);
    const add = union.listeners.filter((n) => !this.#serverListeners.has(n));
    const remove = [...this.#serverListeners].filter((n) => !want.has(n));
    let last: HttpAnswer | undefined;
    if (add.length > 0) {
      last = await this.host.post('/connect/addListener.do', { listener: add });
      if (last.response.ok) for (const n of add) this.#serverListeners.add(n);
    }
    if (remove.length > 0) {
      last = await this.host.post('/connect/removeListener.do', { listener: remove });
      if (last.response.ok) for (const n of remove) this.#serverListeners.delete(n);
    }
    const held = new Set(union.channels);
    const leave = this.#serverChannels.filter((c) => !held.has(c));
    if (leave.length > 0) {
      const answer = await this.host.post('/connect/leave.do', { channels: leave });
      const list = answer.response.ok ? answerChannels(answer) : undefined;
      if (list !== undefined) this.#setServerChannels(list);
      const retryAfter = rateLimitedFor(answer);
      if (retryAfter !== undefined) this.#resyncAfter(retryAfter);
    }
    return last;
  }

  async #handle(tab: string, req: TabRequest): Promise<TabAnswer> {
    const state = this.#stateOf(tab);
    if (state === undefined || this.host.connectionId() === undefined) return unknownConnection();
    if (req.op === 'listeners') {
      if (tab !== this.id) state.listeners = req.names;
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
      if (tab !== this.id) state.channels = channels;
    } else {
      channels = channels.filter((c) => !req.channels.includes(c));
      if (tab !== this.id) state.channels = channels;
      else this.#ownLeaving = req.channels;
      await this.#sync();
      this.#ownLeaving = undefined;
    }
    return { ...ok({ channels }), server: [...this.#serverChannels] };
  }
}
