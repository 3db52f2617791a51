import type { HttpAnswer } from './http.js';
import type { RelayedStream } from './relayed-stream.js';
import { toHttpAnswer, type TabMessage, type TabRequest } from './tab-bus.js';
import type { TabLink } from './tab-link.js';

/** A request of this tab waiting for the leader's answer. */
export interface TabCall {
  req: TabRequest;
  resolve: (answer: HttpAnswer) => void;
  reject: (err: unknown) => void;
}

/**
 * The follower role of a tab in a group: it attaches a {@link RelayedStream} to the leader's
 * stream, sends its listener and channel changes to the leader and waits for the answers, and
 * tells the leader which durable events it delivered.
 */
export class FollowerTab {
  /** The current leader, as far as known. */
  leaderId: string | undefined;
  #relayed: RelayedStream | undefined;
  readonly #calls = new Map<number, TabCall>();
  #seq = 0;

  /** @param ownLockHeld whether the tab holds its own lock yet (the leader watches it to see the tab go) */
  readonly #link: TabLink;
  readonly #ownLockHeld: () => boolean;

  constructor(link: TabLink, ownLockHeld: () => boolean) {
    this.#link = link;
    this.#ownLockHeld = ownLockHeld;
  }

  attach(stream: RelayedStream): void {
    this.#relayed = stream;
    if (this.#ownLockHeld()) this.attachMessage();
  }

  detach(stream: RelayedStream): void {
    if (this.#relayed !== stream) return;
    this.#relayed = undefined;
    if (stream.leader !== undefined) this.#link.post({ t: 'detach', from: this.#link.id });
  }

  /** Its own lock is held now: a stream waiting to attach asks the leader. */
  lockHeld(): void {
    if (this.#relayed !== undefined) this.attachMessage();
  }

  attachMessage(): void {
    const { id, host } = this.#link;
    this.#link.post({ t: 'attach', from: id, state: host.state(), since: host.lastEventId() });
  }

  stateChanged(): void {
    if (this.#relayed?.leader !== undefined) this.#link.post({ t: 'state', from: this.#link.id, state: this.#link.host.state() });
  }

  delivered(ids: string[]): void {
    if (this.leaderId !== undefined) this.#link.post({ t: 'delivered', from: this.#link.id, to: this.leaderId, ids });
  }

  request(req: TabRequest): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const id = ++this.#seq;
      this.#calls.set(id, { req, resolve, reject });
      if (this.leaderId !== undefined) this.#link.post({ t: 'req', from: this.#link.id, to: this.leaderId, id, req });
    });
  }

  /** The requests still waiting (this tab became the leader: it answers them itself). */
  takeCalls(): TabCall[] {
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    return calls;
  }

  /** The tab leaves the group: its relayed stream ends and its requests fail with `err`. */
  stop(err: unknown): void {
    this.#relayed?.end('left the group');
    this.#relayed = undefined;
    this.leaderId = undefined;
    for (const call of this.takeCalls()) call.reject(err);
  }

  onMessage(m: TabMessage): void {
    const relayed = this.#relayed;
    const { id, host } = this.#link;
    switch (m.t) {
      case 'leader':
        this.leaderId = m.from;
        for (const [seq, call] of this.#calls) this.#link.post({ t: 'req', from: id, to: m.from, id: seq, req: call.req });
        if (relayed === undefined) return;
        if (relayed.leader === undefined) this.attachMessage();
        else if (relayed.leader !== m.from) relayed.end('the leader changed');
        return;
      case 'open':
        this.leaderId = m.from;
        if (relayed !== undefined && (relayed.leader === undefined || relayed.leader === m.from)) relayed.open(m.from, m.data);
        return;
      case 'event':
        if (relayed?.leader === m.from) relayed.feed(m.event);
        return;
      case 'end':
        if (relayed?.leader === m.from) relayed.end(m.reason);
        return;
      case 'server-channels':
        host.serverChannels(m.channels);
        return;
      case 'res': {
        const call = this.#calls.get(m.id);
        if (call === undefined) return;
        this.#calls.delete(m.id);
        if (m.answer.server !== undefined) host.serverChannels(m.answer.server);
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
}
