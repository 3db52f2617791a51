import { SseClientError } from './errors.js';
import { FollowerTab } from './follower-tab.js';
import type { HttpAnswer } from './http.js';
import { randomId } from './identity.js';
import { LeaderTab } from './leader-tab.js';
import type { ParsedEvent } from './parser.js';
import type { StreamHandlers } from './stream.js';
import { RelayedStream, type RelayHost } from './relayed-stream.js';
import { TabBus, type TabMessage, type TabRequest, type TabState } from './tab-bus.js';
import { TabLocks } from './tab-leader.js';
import type { TabGroupHost, TabLink } from './tab-link.js';

export type { TabGroupHost } from './tab-link.js';

/** The group of tabs of one system and query: tabs of other users or systems keep apart. */
export function groupName(url: string, query: Record<string, string>): string {
  return `${url}?${new URLSearchParams(Object.entries(query).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))).toString()}`;
}

/**
 * What the client hands the chunk for its tab group (its parts, not a hook each: the hooks are
 * built here, so that a page that does not share tabs does not load them). Shapes only: the
 * chunk imports nothing of the client.
 */
export interface TabClient {
  readonly url: string;
  readonly query: Record<string, string>;
  readonly life: { elected(): void; reconcile(): void; readonly connId: string | undefined; readonly lastId: string };
  readonly listeners: { serverNames(): string[] };
  readonly channels: { readonly list: string[]; setServer(channels: string[]): void };
  readonly calls: { post(path: string, body: Record<string, unknown>): Promise<HttpAnswer> };
  /** The client's stream is open (its connection id is usable). */
  isActive(): boolean;
  /** Acknowledges durable messages to the server over this tab's connection. */
  ack(ids: string[]): void;
}

/** The tab group of the client's system and query, over the client's parts. */
export function tabGroupFor(client: TabClient): TabGroup {
  const { life, listeners, channels, calls } = client;
  return new TabGroup(groupName(client.url, client.query), {
    elected: () => life.elected(),
    attachedChanged: () => life.reconcile(),
    connectionId: () => (client.isActive() ? life.connId : undefined),
    lastEventId: () => life.lastId,
    state: () => ({ listeners: listeners.serverNames(), channels: channels.list }),
    post: (path, body) => calls.post(path, { connectionId: life.connId, ...body }),
    ack: (ids) => client.ack(ids),
    serverChannels: (list) => channels.setServer(list),
  });
}

/**
 * One stream for all tabs of an origin that use the same system (`shareAcrossTabs`). The tab
 * holding the leader lock is the {@link LeaderTab}: it opens the stream and relays each frame
 * over the bus; the others are {@link FollowerTab}s: they attach to it with a
 * {@link RelayedStream}. A tab is a follower until it wins the lock, then the leader until it
 * leaves. Sends and uploads need no leader: a tab posts them itself over the shared
 * connection id.
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
  readonly #link: TabLink;
  #follower: FollowerTab;
  /** Set once this tab won the leader lock (until it leaves the group). */
  #leader: LeaderTab | undefined;

  readonly #name: string;

  constructor(name: string, host: TabGroupHost) {
    this.#name = name;
    this.#link = { id: this.id, host, post: (m) => this.#bus?.post(m) };
    this.#follower = this.#newFollower();
  }

  get isLeader(): boolean {
    return this.#leader !== undefined;
  }

  /** Leader: tabs other than this one use the stream. */
  get followersAttached(): boolean {
    return this.#leader?.followersAttached ?? false;
  }

  /** Joins the group: waits for the leader lock (the stream) and listens to the bus. */
  start(): void {
    if (this.#bus !== undefined) return;
    const locks = new TabLocks(navigator.locks, this.#name, this.id);
    this.#locks = locks;
    this.#bus = new TabBus(`sse:${this.#name}`, this.id, (m) => this.#onMessage(m));
    void locks.holdOwn().then(() => {
      if (this.#locks !== locks) return;
      this.#ownLockHeld = true;
      this.#follower.lockHeld();
    });
    locks.campaign(() => {
      if (this.#locks === locks) this.#elected();
    });
  }

  /** Leaves the group: gives up the lead (the next tab opens the stream) and every lock. */
  stop(): void {
    if (this.#bus === undefined) return;
    this.#leader?.stop();
    this.#leader = undefined;
    this.#follower.stop(new SseClientError('ERR_SSE_DESTROYED', 'The tab left the group'));
    this.#follower = this.#newFollower();
    this.#locks?.stop();
    this.#locks = undefined;
    this.#ownLockHeld = false;
    this.#bus.close();
    this.#bus = undefined;
  }

  // ---- either role: the role decides -----------------------------------------------------

  /** This tab's listeners or channels changed outside a request (the server's list adopted). */
  stateChanged(): void {
    (this.#leader ?? this.#follower).stateChanged();
  }

  /** Durable ids this tab delivered: the leader acknowledges them once every tab has. */
  delivered(ids: string[]): void {
    (this.#leader ?? this.#follower).delivered(ids);
  }

  /** A change of what the shared connection is a member of, decided by the leader. */
  request(req: TabRequest): Promise<HttpAnswer> {
    return (this.#leader ?? this.#follower).request(req);
  }

  // ---- a follower's stream ---------------------------------------------------------------

  /** A follower's stream: the leader's, relayed over the bus. */
  follow(handlers: StreamHandlers): RelayedStream {
    return new RelayedStream(this, handlers);
  }

  attach(stream: RelayedStream): void {
    this.#follower.attach(stream);
  }

  detach(stream: RelayedStream): void {
    this.#follower.detach(stream);
  }

  // ---- the leader's stream (the client calls these only while this tab leads) -------------

  /** What the connect asks for, the union over the tabs. */
  connectState(): TabState {
    return this.#leader?.connectState() ?? this.#link.host.state();
  }

  opened(data: string, channels: string[]): void {
    this.#leader?.opened(data, channels);
  }

  relay(event: ParsedEvent): void {
    this.#leader?.relay(event);
  }

  ended(reason: string): void {
    this.#leader?.ended(reason);
  }

  serverPushed(channels: string[]): void {
    this.#leader?.serverPushed(channels);
  }

  // ---- internals -----------------------------------------------------------------------

  #newFollower(): FollowerTab {
    return new FollowerTab(this.#link, () => this.#ownLockHeld);
  }

  #elected(): void {
    const locks = this.#locks!;
    const leader = new LeaderTab({ ...this.#link, watch: (id, gone) => locks.watch(id, gone) });
    this.#leader = leader;
    this.#follower.leaderId = this.id;
    this.#link.post({ t: 'leader', from: this.id });
    for (const call of this.#follower.takeCalls()) leader.request(call.req).then(call.resolve, call.reject);
    this.#link.host.elected();
  }

  #onMessage(m: TabMessage): void {
    (this.#leader ?? this.#follower).onMessage(m);
  }
}
