import { epochStart, formatWindowId, parseWindowId, type WindowPosition } from '../core/window-id.js';
import type { SendTargetKind } from '../core/targets.js';
import { reaches, type RecoveryTarget, type RecoveryWindow, type WindowPart } from '../local/recovery-window.js';
import type { ClusterLink } from './cluster-link.js';
import { ClosedPeers } from './closed-peers.js';
import type { HandedPart, HandedWindow, WindowAnswer, WindowHandoffRequest, WindowRequest, WindowTookRequest } from './messages.js';
import { TakenSends } from './taken-sends.js';
import type { SharedWindowLog } from './transport.js';

/** How long a node's end is remembered beyond the window: a resume point older than the window is not covered anyway. */
const LIFE_MARGIN_MS = 60_000;

/**
 * The recovery window's side of the cluster, over the cluster's {@link ClusterLink}: answers
 * the peers' `window` and `window-epoch` requests from this node's window, and recovers a
 * stream that came back here from every node's sends. On a LAN each node keeps only its own
 * sends and the peers are asked for theirs; with a shared store (the Redis engine's Stream,
 * `log`) the store is read and no peer is asked.
 *
 * On a LAN a node that is down, or gone (a restarted node comes back under a new node id),
 * took its window with it. Each node remembers when it saw each peer go down ({@link
 * WindowCluster.peerDown}, up: `null`), and tells the asker with its part: a node that was
 * seen down by everyone who knew it before the replay range of a resume point starts cannot
 * have sent anything in it, and does not make the recovery partial; one that went down
 * after it does (its part is lost), even when nobody lists it any more.
 */
export class WindowCluster {
  readonly #link: ClusterLink;
  readonly #window: RecoveryWindow;
  readonly #log: SharedWindowLog | undefined;
  /** Each peer this node saw: `null` while up, else when it went down (this node's clock); `id#start`: a former window of that node. */
  readonly #lives = new Map<string, number | null>();
  /** The window start each peer told last (see {@link WindowCluster.learnEpoch}). */
  readonly #starts = new Map<string, number>();
  /** The windows of nodes that closed gracefully, handed here (see {@link WindowCluster.handoff}), by node id, with when they expire. */
  readonly #handed = new Map<string, { part: HandedWindow; expires: number; bytes: number }>();
  /** The peers that handed their window here (closed gracefully). */
  readonly #closedPeers: ClosedPeers;
  /** The peers' sends written here lately, by window id: a sender whose forward timed out asks. */
  readonly #taken: TakenSends;
  /** This node's sends a peer failed to take, by peer, to ask it about at the end of the tick (`window-took`). */
  #toAsk = new Map<string, string[]>();

  constructor(link: ClusterLink, window: RecoveryWindow, log: SharedWindowLog | undefined) {
    this.#link = link;
    this.#window = window;
    this.#log = log;
    this.#closedPeers = new ClosedPeers(window.settings.slackMs);
    this.#taken = new TakenSends(window.settings.slackMs);
    if (log !== undefined) window.divert(log.add);
    else {
      // A peer's send that reached this node later than half the slack after its id (the other
      // half is for clocks) may have missed a page that left meanwhile: this node replays it too.
      link.watchWindowItems((item, frame) => {
        const at = parseWindowId(item.wid);
        if (at === undefined) return;
        const now = Date.now();
        this.#taken.took(item.wid!, now);
        if (now - at.ms > window.settings.slackMs / 2) {
          window.recordLate(item.kind as SendTargetKind, item.keys, item.event, item.listening, frame);
        }
      });
      // A send of this node that a peer may never have written: its pages that stayed connected missed it.
      // Not a peer that handed its window here: it has no stream left (it is closing).
      link.watchWindowMisses((item, peers) => {
        const at = parseWindowId(item.wid);
        const missedBy = peers.filter((peer) => !this.#closedPeers.drained(peer));
        if (at === undefined || missedBy.length === 0) return;
        window.markMissed(at.ms, at.seq, missedBy);
        this.#askTook(missedBy, item.wid!);
      });
    }
    link.handle('window', (from, request) => {
      this.#closedPeers.heardFrom(from);
      return this.#answer(request);
    });
    link.handle('window-epoch', () => window.epoch);
    link.handle('window-took', (_from, request) => this.#taken.which(request.wids));
    link.announce({ windowTook: true });
    link.handle('window-handoff', (from, request) => {
      this.#closedPeers.handedOff(from);
      return this.#keep(request);
    });
  }

  /**
   * Asks `peers`, which failed to take this node's send `wid`, whether they wrote it all the
   * same (late): at the end of the tick, one `window-took` per peer, within the cluster's
   * timeout. Noted as missed meanwhile (a resume in between is told false); those a peer
   * says it wrote are no longer. A peer that does not answer leaves them noted.
   */
  #askTook(peers: readonly string[], wid: string): void {
    if (this.#toAsk.size === 0) setImmediate(() => this.#flushTook());
    for (const peer of peers) {
      const wids = this.#toAsk.get(peer);
      if (wids === undefined) this.#toAsk.set(peer, [wid]);
      else wids.push(wid);
    }
  }

  #flushTook(): void {
    const asks = this.#toAsk;
    this.#toAsk = new Map();
    if (this.#link.closed) return;
    // A peer of an earlier build would refuse the request: its notes stay (false, never true wrongly).
    const able = new Set(this.#link.peers().flatMap((p) => (p.windowTook === true ? [p.nodeId] : [])));
    for (const [peer, wids] of asks) {
      if (!able.has(peer)) continue;
      const request: WindowTookRequest = { type: 'window-took', wids };
      this.#link.request(peer, request).then(
        (answer) => {
          if (!Array.isArray(answer)) return;
          const took = new Set(answer);
          for (const wid of wids) {
            const at = took.has(wid) ? parseWindowId(wid) : undefined;
            if (at !== undefined) this.#window.unmarkMissed(at.ms, at.seq, peer);
          }
        },
        (err: unknown) => this.#link.peerError(peer, 'window-took', err),
      );
    }
  }

  /** Once the cluster runs: the shared store's epoch (Redis), if any. */
  async start(): Promise<void> {
    await this.#log?.start();
  }

  /**
   * A peer came up: the cluster's history is the oldest epoch among the nodes (adopted). Its
   * window's start is noted: a node that comes back under the same node id (a configured
   * `cluster.nodeId`) with a new window lost its former one's sends, as a node gone. Asked with
   * a `window` request that resumes nothing (a peer of an older version answers its epoch
   * too). Not with a shared store.
   */
  learnEpoch(nodeId: string): void {
    if (this.#log !== undefined || this.#link.closed) return;
    const before = this.#lives.get(nodeId);
    this.#lives.set(nodeId, null);
    this.#closedPeers.back(nodeId);
    const window = this.#window;
    const request: WindowRequest = { type: 'window', from: '-', who: { channels: [], listeners: [] } };
    this.#link.request(nodeId, request).then(
      (answer) => {
        const a = answer as WindowAnswer | undefined;
        if (typeof a?.epoch === 'string') window.adopt(a.epoch);
        const report = reportOf(a);
        if (report !== undefined) this.#started(nodeId, report.start, typeof before === 'number' ? before : Date.now());
      },
      (err: unknown) => this.#link.peerError(nodeId, 'window-epoch', err),
    );
  }

  /**
   * Notes the window start a peer told (`start`). Another one than before under the same node
   * id: the former window ended by `endedBy` at the latest, and counts as a node gone then.
   */
  #started(nodeId: string, start: number, endedBy: number): void {
    const known = this.#starts.get(nodeId);
    this.#starts.set(nodeId, start);
    if (known !== undefined && known !== start) {
      this.#lives.set(`${nodeId}#${known}`, endedBy);
      this.#closedPeers.back(nodeId);
    }
  }

  /**
   * Graceful close, once this node takes no more sends: hands its window (and those it held
   * for nodes gone before it) to every live peer, so that a page resuming from before now is
   * still told `recovered: true` once this node is gone. At most `maxBytes` (the oldest go
   * first); a peer that does not answer within the cluster's timeout just lacks it. LAN only.
   */
  async handoff(): Promise<void> {
    if (this.#log !== undefined || this.#link.closed) return;
    const peers = this.#link.peers();
    if (peers.length === 0) return;
    const now = Date.now();
    const { droppedMs, entries, missed } = this.#window.held(now);
    const report = this.#report();
    // A peer up now is told up until now: the ones still up say so themselves, and a later crash of one is judged by them.
    for (const [id, at] of Object.entries(report.lives)) if (at === null) report.lives[id] = now;
    const own: HandedWindow = {
      ...report,
      droppedMs,
      entries: entries.map((e) => [e.ms, e.kind, [...e.keys], e.event, e.listening, e.frame.toString('utf8')]),
      missed: missed.map((m) => [m.ms, m.kind, [...m.keys], m.event, m.listening, [...m.peers]]),
    };
    const parts = [own, ...[...this.#held(now)].map((h) => h.part)];
    // Bounded by the window's byte cap: the oldest sends go first, and the part says it misses them.
    let budget = this.#window.settings.maxBytes;
    for (const part of parts) {
      let keep = part.entries.length;
      while (keep > 0 && budget >= entryBytes(part.entries[keep - 1]!)) budget -= entryBytes(part.entries[--keep]!);
      if (keep > 0) {
        part.droppedMs = Math.max(part.droppedMs, part.entries[keep - 1]![0]);
        part.entries = part.entries.slice(keep);
      }
    }
    const request: WindowHandoffRequest = { type: 'window-handoff', parts };
    await Promise.all(
      peers.map((p) => this.#link.request(p.nodeId, request).catch((err: unknown) => this.#link.peerError(p.nodeId, 'window-handoff', err))),
    );
  }

  /** Keeps the parts a peer closing handed here, until the window's time is over, at most `maxBytes` in all (the oldest parts go). */
  #keep(request: WindowHandoffRequest): true {
    const now = Date.now();
    const expires = now + this.#window.settings.windowMs + this.#window.settings.slackMs;
    for (const part of request.parts) {
      if (part.self === this.#link.nodeId) continue;
      this.#handed.delete(part.self);
      this.#handed.set(part.self, { part, expires, bytes: part.entries.reduce((n, e) => n + entryBytes(e), 0) });
    }
    let total = 0;
    for (const h of this.#held(now)) total += h.bytes;
    for (const [id, h] of this.#handed) {
      if (total <= this.#window.settings.maxBytes) break;
      total -= h.bytes;
      this.#handed.delete(id);
    }
    return true;
  }

  /** The handed windows still held (expired ones are dropped). */
  *#held(now: number): Generator<{ part: HandedWindow; bytes: number }> {
    for (const [id, h] of this.#handed) {
      if (h.expires < now) this.#handed.delete(id);
      else yield h;
    }
  }

  /** What the handed windows give a resume from `from` that reaches `who`: each node's part, covered when its window reaches back to the replay range. */
  #handedParts(from: WindowPosition, who: RecoveryTarget): HandedPart[] {
    const now = Date.now();
    const lower = from.ms - this.#window.settings.slackMs;
    const parts: HandedPart[] = [];
    for (const { part } of this.#held(now)) {
      const frames: string[] = [];
      for (const [ms, kind, keys, event, listening, frame] of part.entries) {
        if (ms >= lower && reaches({ kind, keys, event, listening }, who)) frames.push(frame);
      }
      // A send a peer failed to take before the range, which the page may have missed live there: not vouched for, as the node itself would not.
      const missedLive = (part.missed ?? []).some(
        ([ms, kind, keys, event, listening, peers]) =>
          ms < lower &&
          ms >= now - this.#window.settings.windowMs &&
          reaches({ kind, keys, event, listening }, who) &&
          // A peer that went down since: its pages reconnected and were replayed what it missed.
          peers.some((peer) => !this.#wentDown(peer)),
      );
      const { self, node, start, lives } = part;
      const covered = part.droppedMs < lower && from.ms >= now - this.#window.settings.windowMs && !missedLive;
      parts.push({ self, node, start, lives, covered, frames, missedLive });
    }
    return parts;
  }

  /**
   * Writes each handed-off node's frames once (several peers may hold its window; a covered
   * part first) into `frames`, and answers the reports of the nodes whose part is covered, and
   * whether a send one of them made before the range may have been missed live (each holder
   * that has its part says so: none excuses the peer that failed it).
   */
  #takeHanded(parts: HandedPart[], frames: Buffer[]): { reports: LifeReport[]; missedLive: boolean } {
    const chosen = new Map<string, HandedPart>();
    const excused = new Set<string>();
    for (const p of parts) {
      if (!chosen.has(p.self) || (p.covered && !chosen.get(p.self)!.covered)) chosen.set(p.self, p);
      if (p.missedLive !== true) excused.add(p.self);
    }
    const reports: LifeReport[] = [];
    for (const p of chosen.values()) {
      for (const text of p.frames) frames.push(Buffer.from(text, 'utf8'));
      if (p.covered) reports.push({ self: p.self, node: p.node, start: p.start, lives: p.lives });
    }
    // Such a send concerns the pages of the peer that failed it, not the node that sent it: also
    // when that node went down before the range (its part is not needed then), the page may have missed it.
    return { reports, missedLive: [...chosen.keys()].some((self) => !excused.has(self)) };
  }

  /** A peer went down, or left: remembered with the time, for the resume points of the window's length. */
  peerDown(nodeId: string, now = Date.now()): void {
    if (this.#log !== undefined) return;
    if (this.#lives.get(nodeId) == null) this.#lives.set(nodeId, now);
    this.#closedPeers.down(nodeId, now);
    const forget = now - this.#window.settings.windowMs - this.#window.settings.slackMs - LIFE_MARGIN_MS;
    for (const [id, at] of this.#lives) if (at !== null && at < forget) this.#lives.delete(id);
    this.#closedPeers.forget(forget);
  }

  /**
   * What a stream that came back here missed: this node's part at once, then each peer's own
   * sends since the resume point. Each part is written when its node vouches for it, node by
   * node, each in its own order; `covered` only when every node that may have sent since the
   * resume point did: a peer failing, one down or gone since the replay range started (its
   * part is unknown), a window exceeded anywhere give `recovered: false`, and the page
   * refetches. A resume point of an older epoch (the cluster's history was lost) gets nothing.
   * At once when there is no peer to ask.
   */
  recover(from: WindowPosition, who: RecoveryTarget): WindowPart | Promise<WindowPart> {
    if (this.#log !== undefined) return this.#log.since(from, who);
    const link = this.#link;
    const peers = link.peers();
    if (link.closed) return this.#window.resume(from, who);
    if (peers.length === 0) {
      const part = this.#window.knows(from.epoch) ? this.#window.since(from, who, undefined, this.#wentDown) : { covered: false, frames: [] };
      if (!this.#window.knows(from.epoch)) return part;
      const handed = this.#takeHanded(this.#handedParts(from, who), part.frames);
      if (!part.covered || handed.missedLive) return { covered: false, frames: part.frames };
      return { covered: this.#othersSilent(from, [this.#report()], handed.reports), frames: part.frames };
    }
    return this.#ask(
      from,
      who,
      peers.map((p) => p.nodeId),
    );
  }

  async #ask(from: WindowPosition, who: RecoveryTarget, peerIds: string[]): Promise<WindowPart> {
    const window = this.#window;
    const own = window.since(from, who, undefined, this.#wentDown);
    const request: WindowRequest = { type: 'window', from: formatWindowId(from), who };
    const answers: WindowAnswer[] = [];
    const failed: string[] = [];
    await Promise.all(
      peerIds.map(async (nodeId) => {
        try {
          answers.push((await this.#link.request(nodeId, request)) as WindowAnswer);
        } catch (err) {
          failed.push(nodeId);
          this.#link.peerError(nodeId, 'window', err);
        }
      }),
    );
    // The peers' epochs first: a node that has just started may not have adopted the cluster's yet.
    for (const answer of answers) if (typeof answer?.epoch === 'string') window.adopt(answer.epoch);
    if (!window.knows(from.epoch)) return { covered: false, frames: [] };
    let covered = own.covered;
    const frames = own.frames;
    for (const answer of answers) {
      // A part that is not covered may still hold frames (all it has, e.g. after a send a peer missed).
      if (answer?.covered !== true) covered = false;
      if (!Array.isArray(answer?.frames)) {
        covered = false;
        continue;
      }
      for (const text of answer.frames) if (typeof text === 'string') frames.push(Buffer.from(text, 'utf8'));
    }
    const taken = this.#takeHanded([...this.#handedParts(from, who), ...answers.flatMap(handedOf)], frames);
    if (taken.missedLive) covered = false;
    const handed = taken.reports;
    const reports = answers.map(reportOf);
    // A node that answers with another window than the one it told before restarted under its
    // node id, maybe unseen: its former window's sends since the range started are unknown.
    const lower = this.#lower(from);
    for (const r of reports) {
      if (r === undefined) continue;
      const known = this.#starts.get(r.self);
      if (known !== undefined && known !== r.start) {
        this.#started(r.self, r.start, Date.now());
        if (r.start > lower) covered = false;
      }
    }
    // A peer that failed to answer because it was closing, but handed its window over first, answers through it.
    if (!failed.every((id) => handed.some((r) => r.self === id))) covered = false;
    if (covered) covered = this.#othersSilent(from, [this.#report(), ...reports], handed);
    return { covered, frames };
  }

  /**
   * Whether a peer went down since this node saw it fail a send: its pages reconnected then,
   * and a resume from there is judged by when it went down (see {@link WindowCluster.recover}).
   * Not one that closed gracefully: its handed window answers for it, and its pages are not
   * judged by when it went (see {@link ClosedPeers}).
   */
  readonly #wentDown = (nodeId: string): boolean => typeof this.#lives.get(nodeId) === 'number' && !this.#closedPeers.closedGracefully(nodeId);

  /** Where the replay range of `from` starts: the slack before it, not before the epoch began. */
  #lower(from: WindowPosition): number {
    return Math.max(from.ms - this.#window.settings.slackMs, epochStart(this.#window.epoch));
  }

  /** What this node tells about the cluster with its part: its window's node tag and start, and the peers it saw. */
  #report(): LifeReport {
    return { node: this.#window.node, start: this.#window.startedMs, lives: Object.fromEntries(this.#lives), self: this.#link.nodeId };
  }

  /**
   * Whether no node other than those that gave their part (`reports`: this one and the peers
   * that answered) may have sent anything since the replay range of `from` starts: every node
   * one of them saw is either among them, or was seen down before that by all who knew it
   * (not up by any). And one of them knew the cluster since before that point (or since the
   * epoch began), so that a node that lived meanwhile would have been seen.
   */
  #othersSilent(from: WindowPosition, reports: (LifeReport | undefined)[], handed: LifeReport[]): boolean {
    // A node that handed its window over when it closed answers through the peers that hold it.
    const known = [...reports.filter((r): r is LifeReport => r !== undefined), ...handed];
    // A peer of an older version tells nothing of the nodes it saw: only those that answered may exist.
    if (known.length !== reports.length + handed.length) return [...this.#lives.keys()].every((id) => known.some((r) => r.self === id));
    const lower = this.#lower(from);
    // The page's last event came from a node that is not answering: it may still be sending (cut off from the others).
    if (!known.some((r) => r.node === from.node)) return false;
    if (!known.some((r) => r.start <= lower)) return false;
    const answering = new Set(known.map((r) => r.self));
    for (const r of known) {
      for (const [id, at] of Object.entries(r.lives)) {
        if (answering.has(id)) continue;
        // Up for someone, or down only since the replay range started: its part is missing.
        if (at === null || !(at < lower)) return false;
      }
    }
    return true;
  }

  /** A peer's answer to {@link WindowRequest}, from this node's window. */
  #answer(request: WindowRequest): WindowAnswer {
    const window = this.#window;
    const from = parseWindowId(request.from);
    const report = this.#report();
    if (from === undefined) return { epoch: window.epoch, covered: false, frames: [], ...report };
    const part = window.since(from, request.who, undefined, this.#wentDown);
    const handed = this.#handedParts(from, request.who);
    return { epoch: window.epoch, covered: part.covered, frames: part.frames.map((f) => f.toString('utf8')), ...report, handed };
  }
}

/** What a node tells of itself and its peers with its part of a recovery (see {@link WindowAnswer}). */
interface LifeReport {
  self: string;
  node: string;
  start: number;
  lives: Record<string, number | null>;
}

/** The report in a peer's answer, or undefined when it has none (an older version) or a malformed one. */
function reportOf(answer: WindowAnswer | undefined): LifeReport | undefined {
  if (answer === undefined || answer === null) return undefined;
  const { self, node, start, lives } = answer;
  if (typeof self !== 'string' || typeof node !== 'string' || typeof start !== 'number' || typeof lives !== 'object' || lives === null)
    return undefined;
  for (const at of Object.values(lives)) if (at !== null && typeof at !== 'number') return undefined;
  return { self, node, start, lives };
}

/** What a handed-off send counts against the byte cap, as the window counts it (about). */
function entryBytes(entry: HandedWindow['entries'][number]): number {
  return 120 + entry[5].length + entry[2].reduce((n, k) => n + k.length + 16, 0);
}

/** The handed-off parts in a peer's answer that are well formed (none from older versions). */
function handedOf(answer: WindowAnswer | undefined): HandedPart[] {
  if (!Array.isArray(answer?.handed)) return [];
  return answer.handed.filter(
    (p) =>
      typeof p?.self === 'string' &&
      typeof p.node === 'string' &&
      typeof p.start === 'number' &&
      typeof p.covered === 'boolean' &&
      typeof p.lives === 'object' &&
      p.lives !== null &&
      Array.isArray(p.frames) &&
      p.frames.every((f) => typeof f === 'string'),
  );
}
