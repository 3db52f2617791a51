import { assertFieldValue } from '../core/frame.js';
import type { SendTargetKind } from '../core/targets.js';
import { newEpoch, newNodeTag, type WindowPosition } from '../core/window-id.js';

/** What a send's target is, as {@link reaches} matches it against a reconnecting stream. */
interface SendTarget {
  kind: SendTargetKind;
  keys: readonly string[];
  event: string;
  listening: boolean;
}

/** Who a reconnecting stream is, as the window matches it against a send's target. */
export interface RecoveryTarget {
  userId?: string | undefined;
  accessToken?: string | undefined;
  tenantId?: string | undefined;
  /** Every channel it is a member of: the fixed one and those rejoined. */
  channels: readonly string[];
  /** Its listener set: a `listening` send reaches it only if the event is in it. */
  listeners: readonly string[];
}

/** A window's answer for one resume point. */
export interface WindowPart {
  /** False when a send after the resume point may be gone: another epoch, older than the window, or trimmed by the byte cap. */
  covered: boolean;
  /** The frames the stream missed, oldest first (empty when not covered). */
  frames: Buffer[];
}

/** Takes each send instead of the window's memory (the Redis engine keeps them in a Stream). */
export type WindowSink = (id: string, kind: SendTargetKind, keys: readonly string[], event: string, listening: boolean, frame: Buffer) => void;

/** Settings of a {@link RecoveryWindow}. */
export interface RecoveryWindowSettings {
  /** How long a send stays, in ms. */
  windowMs: number;
  /** Most bytes the entries hold (frames plus keys plus a fixed overhead each); the oldest go first. */
  maxBytes: number;
  /**
   * How far before a resume point this node's sends are replayed, in ms (0: a node alone,
   * exactly after its own id): a send forwarded to the page's node may still have been on its
   * way when the page saw a later one (forwarding delay, clock skew), or have been dropped
   * there as late (the cluster's send deadline). The client drops what it saw already by id.
   */
  slackMs: number;
}

/** `seq` in base 36 for the first sends of a millisecond (most of them). */
const SEQ36 = Array.from({ length: 36 }, (_, i) => i.toString(36));

/** Bookkeeping cost of an entry beyond its frame and keys (array slots), estimated. */
const ENTRY_OVERHEAD = 120;

/**
 * Frames are copied into chunks of this size rather than kept as one Buffer each: a Buffer
 * is a heap object that the GC copies while the window keeps it, bytes in a chunk are not.
 * A chunk goes when its last entry does (so a window holds up to about two chunks more than it counts).
 */
const CHUNK_BYTES = 64 * 1024;
/** A frame larger than this keeps its own Buffer (rare: copying it would waste most of a chunk). */
const OWN_BUFFER_BYTES = CHUNK_BYTES / 4;

/**
 * This node's ordinary sends of the last `windowMs` (at most `maxBytes`), so that a stream
 * that comes back with the id of the last event it saw gets what it missed. Each send gets
 * its id here ({@link RecoveryWindow.nextId}), once for all its recipients. Only this node's
 * own sends: in a cluster each node answers for its own, and the node that takes a
 * reconnect asks the others.
 */
export class RecoveryWindow {
  /** The history these ids belong to: new with the process; in a cluster, the oldest of the peers' (adopted). */
  #epoch: string;
  readonly node = newNodeTag();
  /** When this window began: it holds every send of this node since (this process). */
  readonly startedMs: number;
  readonly #settings: RecoveryWindowSettings;
  // The entries, oldest first, one column per field rather than one object per send: a send
  // allocates nothing here that the GC must copy while the window keeps it (`ms` in a double
  // array is no boxed number either). Index `#head` is the oldest held; below it, dropped.
  readonly #msOf: number[] = [];
  readonly #seqOf: number[] = [];
  readonly #kind: SendTargetKind[] = [];
  /** One key as itself (most sends: no array kept per send), several as the send's array. */
  readonly #keys: (string | readonly string[])[] = [];
  readonly #event: string[] = [];
  readonly #listening: boolean[] = [];
  /**
   * The frame every recipient got, `id:` included (a replay writes the same bytes): the chunk
   * it was copied into (undefined once dropped), where in it, how long.
   */
  readonly #frameIn: (Buffer | undefined)[] = [];
  readonly #frameAt: number[] = [];
  readonly #frameLength: number[] = [];
  /** The chunk frames are copied into now, and how much of it is used. */
  #chunk: Buffer | undefined;
  #chunkUsed = 0;
  /** What each counts against `maxBytes`. */
  readonly #size: number[] = [];
  #head = 0;
  #bytes = 0;
  /** The newest entry dropped (time or bytes): a resume point before it is not covered. */
  #droppedMs = -1;
  #droppedSeq = -1;
  #lastMs = 0;
  #seq = 0;
  /** This node's sends that a peer may never have written (see {@link RecoveryWindow.markMissed}), oldest first. */
  readonly #missed: { entry: SendTarget & { ms: number }; seq: number; peers: readonly string[] }[] = [];
  /** Where sends go instead of this memory (the Redis engine's stream), if anywhere. */
  #sink: WindowSink | undefined;
  /** `epoch.ms.` of the last id given, in base 36: built once per millisecond, not per send. */
  #idPrefix = '';
  /** The epoch and `ms` `#idPrefix` was built for. */
  #idPrefixEpoch = '';
  #idPrefixMs = -1;
  readonly #idSuffix: string;

  constructor(settings: RecoveryWindowSettings, now = Date.now()) {
    this.#settings = settings;
    this.startedMs = now;
    this.#epoch = newEpoch(now);
    this.#idSuffix = `.${this.node}`;
  }

  get epoch(): string {
    return this.#epoch;
  }

  get settings(): Readonly<RecoveryWindowSettings> {
    return this.#settings;
  }

  /** Sends go to `sink` from now on, not to this memory (the Redis engine). */
  divert(sink: WindowSink): void {
    this.#sink = sink;
  }

  /** Takes the epoch a shared store names (Redis), older or newer. */
  useEpoch(epoch: string): void {
    this.#epoch = epoch;
  }

  /** Entries held now. */
  get size(): number {
    return this.#msOf.length - this.#head;
  }

  /** Bytes held now (as counted against `maxBytes`). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Takes `epoch` when it is older than ours (a cluster agrees on its oldest living history).
   * A page that resumes from an id of our former epoch hears `recovered: false`; the sends
   * kept stay, for pages resuming in the adopted one. Answers whether it changed.
   */
  adopt(epoch: string): boolean {
    if (!(epoch < this.#epoch)) return false;
    this.#epoch = epoch;
    return true;
  }

  /**
   * Whether a resume point of `epoch` belongs to the history this window continues: not when
   * it is older than ours (all the nodes that held it were gone). A newer one is a node's own
   * before it adopted the cluster's: the same sends, still held. Asked once per reconnect by
   * the node that takes it, after the peers told their epochs.
   */
  knows(epoch: string): boolean {
    return epoch >= this.#epoch;
  }

  /** The id of the next send: its position, once per send whatever the number of recipients. */
  nextId(now = Date.now()): { id: string; ms: number; seq: number } {
    // A clock that steps back must not give an id that sorts before one already given.
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#seq = 0;
    } else {
      this.#seq++;
    }
    const ms = this.#lastMs;
    const seq = this.#seq;
    // formatWindowId's text, its `epoch.ms.` part kept while the millisecond lasts (base 36 of a
    // 13-digit number is the dearest part of an id, and a burst gives many ids per millisecond).
    if (ms !== this.#idPrefixMs || this.#epoch !== this.#idPrefixEpoch) {
      this.#idPrefix = `${this.#epoch}.${ms.toString(36)}.`;
      // The rest of an id is digits and our hex tag; the epoch may come from a peer or Redis. Checked
      // here, once per millisecond, the frame need not scan the id per send (encodeFrameWithOwnId).
      assertFieldValue('id', this.#idPrefix);
      this.#idPrefixEpoch = this.#epoch;
      this.#idPrefixMs = ms;
    }
    const id = this.#idPrefix + (seq < 36 ? SEQ36[seq]! : seq.toString(36)) + this.#idSuffix;
    return { id, ms, seq };
  }

  /** Keeps a send given its id (`at`) by {@link RecoveryWindow.nextId}. */
  record(
    at: { id: string; ms: number; seq: number },
    kind: SendTargetKind,
    keys: readonly string[],
    event: string,
    listening: boolean,
    frame: Buffer,
  ): void {
    if (this.#sink !== undefined) {
      this.#sink(at.id, kind, keys, event, listening, frame);
      return;
    }
    this.#push(at.ms, at.seq, kind, keys, event, listening, frame);
    this.trim(at.ms);
  }

  #push(ms: number, seq: number, kind: SendTargetKind, keys: readonly string[], event: string, listening: boolean, frame: Buffer): void {
    let bytes = ENTRY_OVERHEAD + frame.length;
    for (const key of keys) bytes += key.length + 16;
    this.#msOf.push(ms);
    this.#seqOf.push(seq);
    this.#kind.push(kind);
    this.#keys.push(keys.length === 1 ? keys[0]! : keys);
    this.#event.push(event);
    this.#listening.push(listening);
    this.#pushFrame(frame);
    this.#size.push(bytes);
    this.#bytes += bytes;
  }

  #pushFrame(frame: Buffer): void {
    const length = frame.length;
    if (length > OWN_BUFFER_BYTES) {
      this.#frameIn.push(frame);
      this.#frameAt.push(0);
    } else {
      if (this.#chunk === undefined || this.#chunkUsed + length > CHUNK_BYTES) {
        // Uninitialized memory is fine: only the ranges written are ever read.
        this.#chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
        this.#chunkUsed = 0;
      }
      frame.copy(this.#chunk, this.#chunkUsed);
      this.#frameIn.push(this.#chunk);
      this.#frameAt.push(this.#chunkUsed);
      this.#chunkUsed += length;
    }
    this.#frameLength.push(length);
  }

  /**
   * Keeps a peer's send that reached this node long after its id was given (`id`, in its
   * frame): its sender stalled, or this node did. Pages here got it only now, maybe after
   * they left; a resume point later than its id by more than the slack would not reach it in
   * its sender's part, so this node replays it as if it had sent it now (the client drops it
   * by id if it saw it). Ordered by its arrival; not with the Redis engine (its Stream is
   * read by when each send was appended).
   */
  recordLate(kind: SendTargetKind, keys: readonly string[], event: string, listening: boolean, frame: Buffer, now = Date.now()): void {
    if (this.#sink !== undefined) return;
    // Keeps the entries in time order and the next own id after it.
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#seq = 0;
    }
    this.#push(this.#lastMs, -1, kind, keys, event, listening, frame);
    this.trim(now);
  }

  /**
   * A send of this node (`ms`, `seq`) that `peers` were asked for and failed: their pages
   * that stayed connected may have missed it, and a page resuming from after it cannot be
   * told it has everything. While the send is in the window, a resume whose replay range starts
   * after it, and that it reaches, is not covered (the page may have been on that peer).
   */
  markMissed(ms: number, seq: number, peers: readonly string[]): void {
    const i = this.#firstAtOrAfter(ms);
    for (let j = i; j < this.#msOf.length && this.#msOf[j] === ms; j++) {
      if (this.#seqOf[j] === seq) {
        // Without its frame: the byte cap may drop the entry meanwhile, this note stays for windowMs.
        const keys = this.#keys[j]!;
        const entry = {
          ms,
          kind: this.#kind[j]!,
          keys: typeof keys === 'string' ? [keys] : keys,
          event: this.#event[j]!,
          listening: this.#listening[j]!,
        };
        this.#missed.push({ entry, seq, peers });
        return;
      }
    }
  }

  /** `peer` wrote the send (`ms`, `seq`) after all (late): it no longer counts as missed by it. */
  unmarkMissed(ms: number, seq: number, peer: string): void {
    for (let i = this.#missed.length - 1; i >= 0; i--) {
      const m = this.#missed[i]!;
      if (m.entry.ms !== ms || m.seq !== seq || !m.peers.includes(peer)) continue;
      const peers = m.peers.filter((p) => p !== peer);
      if (peers.length > 0) m.peers = peers;
      else this.#missed.splice(i, 1);
    }
  }

  /** Drops what is older than the window or beyond the byte cap. Cheap when nothing is due. */
  trim(now = Date.now()): void {
    const oldest = now - this.#settings.windowMs;
    const length = this.#msOf.length;
    while (this.#head < length) {
      const i = this.#head;
      if (this.#msOf[i]! >= oldest && this.#bytes <= this.#settings.maxBytes) break;
      this.#bytes -= this.#size[i]!;
      this.#droppedMs = this.#msOf[i]!;
      this.#droppedSeq = this.#seqOf[i]!;
      // The frame goes now; the rest with the next shift (keys are small, names shared).
      this.#frameIn[i] = undefined;
      this.#head++;
    }
    // Shift once the dropped half is large: amortized O(1) per entry.
    if (this.#head > 1024 && this.#head * 2 > length) {
      const n = this.#head;
      const columns = [
        this.#msOf,
        this.#seqOf,
        this.#kind,
        this.#keys,
        this.#event,
        this.#listening,
        this.#frameIn,
        this.#frameAt,
        this.#frameLength,
        this.#size,
      ];
      for (const column of columns) column.splice(0, n);
      this.#head = 0;
    }
  }

  /**
   * What a stream that saw `from` missed of this node's sends and that reaches `who`, in
   * this node's order. Not covered (and nothing given) for another epoch, a resume point
   * older than the window, or one before a send the byte cap dropped. Not covered either (all
   * given) when a send before the range was missed by a peer ({@link RecoveryWindow.markMissed})
   * that `excused` does not excuse (one that went down since: its pages are judged by that).
   */
  since(from: WindowPosition, who: RecoveryTarget, now = Date.now(), excused?: (peer: string) => boolean): WindowPart {
    const s = this.#settings;
    this.trim(now);
    if (from.ms < now - s.windowMs) return { covered: false, frames: [] };
    // Our own id on a node alone: exactly after it. In a cluster, or another sender's id: from a
    // while before it (see slackMs): a send forwarded late is not written by its receiver
    // (the cluster's send deadline), so a later one of the same sender says nothing of it.
    const own = from.node === this.node && s.slackMs === 0;
    const fromMs = own ? from.ms : from.ms - s.slackMs;
    const fromSeq = own ? from.seq : -1;
    if (this.#droppedMs > fromMs || (this.#droppedMs === fromMs && this.#droppedSeq > fromSeq)) return { covered: false, frames: [] };
    // A send a peer may never have written, before the range: the page may have missed it live
    // there. What follows is still given (it is all there), but not as covered.
    while (this.#missed.length > 0 && this.#missed[0]!.entry.ms < now - s.windowMs) this.#missed.shift();
    const missedLive = this.#missed.some((m) => m.entry.ms < fromMs && reaches(m.entry, who) && m.peers.some((peer) => excused?.(peer) !== true));
    const frames: Buffer[] = [];
    for (let i = this.#firstAtOrAfter(fromMs); i < this.#msOf.length; i++) {
      if (this.#msOf[i] === fromMs && this.#seqOf[i]! <= fromSeq) continue;
      if (reachesTarget(this.#kind[i]!, this.#keys[i]!, this.#event[i]!, this.#listening[i]!, who)) {
        const at = this.#frameAt[i]!;
        frames.push(this.#frameIn[i]!.subarray(at, at + this.#frameLength[i]!));
      }
    }
    return { covered: !missedLive, frames };
  }

  /**
   * Every send held, oldest first, and the time of the newest one dropped (-1: none): what a
   * node closing gracefully hands to its peers (they answer for it once it is gone).
   */
  held(now = Date.now()): {
    droppedMs: number;
    entries: (SendTarget & { ms: number; seq: number; frame: Buffer })[];
    /** Sends a peer failed to take (see {@link markMissed}), still within the window: the peers answering for this node must not vouch past them either. */
    missed: (SendTarget & { ms: number; peers: readonly string[] })[];
  } {
    this.trim(now);
    while (this.#missed.length > 0 && this.#missed[0]!.entry.ms < now - this.#settings.windowMs) this.#missed.shift();
    const missed = this.#missed.map((m) => ({ ...m.entry, peers: m.peers }));
    const entries: (SendTarget & { ms: number; seq: number; frame: Buffer })[] = [];
    for (let i = this.#head; i < this.#msOf.length; i++) {
      const keys = this.#keys[i]!;
      const at = this.#frameAt[i]!;
      entries.push({
        ms: this.#msOf[i]!,
        seq: this.#seqOf[i]!,
        kind: this.#kind[i]!,
        keys: typeof keys === 'string' ? [keys] : keys,
        event: this.#event[i]!,
        listening: this.#listening[i]!,
        frame: this.#frameIn[i]!.subarray(at, at + this.#frameLength[i]!),
      });
    }
    return { droppedMs: this.#droppedMs, entries, missed };
  }

  /** A recovery from this window alone (one node, or no peer to ask): nothing for an older epoch. */
  resume(from: WindowPosition, who: RecoveryTarget, now = Date.now()): WindowPart {
    return this.knows(from.epoch) ? this.since(from, who, now) : { covered: false, frames: [] };
  }

  /** Index of the first entry with `ms >= at` (entries are in id order). */
  #firstAtOrAfter(at: number): number {
    let lo = this.#head;
    let hi = this.#msOf.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#msOf[mid]! < at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Whether a send's target reaches `who` (the `listening` filter included). */
export function reaches(e: SendTarget, who: RecoveryTarget): boolean {
  return reachesTarget(e.kind, e.keys, e.event, e.listening, who);
}

/** {@link reaches} on an entry's fields; `keys`: one key as itself, or several. */
function reachesTarget(kind: SendTargetKind, keys: string | readonly string[], event: string, listening: boolean, who: RecoveryTarget): boolean {
  if (listening && !who.listeners.includes(event)) return false;
  const has = (key: string | undefined): boolean => key !== undefined && (typeof keys === 'string' ? keys === key : keys.includes(key));
  switch (kind) {
    case 'all':
      return true;
    case 'user':
      return has(who.userId);
    case 'token':
      return has(who.accessToken);
    case 'tenant':
      return has(who.tenantId);
    case 'channel':
      return who.channels.some(has);
    default:
      // A send to connection ids is for streams that are gone: never kept (see the hub).
      return false;
  }
}
