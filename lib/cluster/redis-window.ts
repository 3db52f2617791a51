import type { SendTargetKind } from '../core/targets.js';
import { parseWindowId, type WindowPosition } from '../core/window-id.js';
import { reaches, type RecoveryTarget, type RecoveryWindow, type WindowPart } from '../local/recovery-window.js';
import type { RedisClient } from '../redis/redis-connection.js';
import type { RedisWriteQueue } from '../redis/redis-write-queue.js';
import type { SharedWindowLog } from './transport.js';

/**
 * The recovery window on the Redis engine: one Redis Stream per cluster (prefix) that every
 * node appends its ordinary sends to (`XADD … MINID ~ <now - windowMs>` and `MAXLEN ~`), read
 * with `XRANGE` when a stream comes back, on whichever node (`MAXLEN ~` by `XTRIM` every 256
 * sends: one XADD cannot trim by both, and the count approximates `maxBytes` from the mean
 * size of this node's entries). Nothing is kept in the nodes'
 * memory, and the sends of a node that died stay readable. The epoch is a key beside it
 * (`SET NX` at start): when Redis loses its data, the next node writes a new one and older
 * resume points are not recovered.
 *
 * Written on the connection that publishes the cluster's sends, before them, through the same
 * write queue (the XADD and the PUBLISH of a send leave in one socket write): a send is in the
 * stream before any peer can deliver it, so a reconnect that reads the stream after it was
 * registered misses nothing between the two. Read on the same connection with plain
 * (auto-pipelined) commands after the queue is flushed, so that the read comes after this
 * node's own XADDs.
 *
 * A send whose XADD failed (Redis unreachable, a command timeout, an error reply) is a hole in
 * the history: a resume point before it must not be told `recovered: true`. This node knows at
 * once; the others learn it from the node's next entries, which carry the time of its newest
 * hole (field `h`; a marker entry is written, retried every second, when no send follows). A
 * reconnect whose replay range starts before a hole is not covered.
 */
export class RedisWindowLog implements SharedWindowLog {
  readonly #redis: RedisClient;
  readonly #writes: RedisWriteQueue;
  readonly #key: string;
  readonly #epochKey: string;
  readonly #window: RecoveryWindow;
  readonly #windowMs: number;
  readonly #slackMs: number;
  readonly #maxBytes: number;
  /** Running mean of an entry's size, for the `MAXLEN` that approximates `maxBytes`. */
  #meanBytes = 256;
  #added = 0;
  readonly #report: (err: unknown) => void;
  /** When (this node's clock) the newest XADD that failed was known to fail, -1 if none in the window: its entry would have been in the Stream by then. */
  #holeMs = -1;
  /** The newest hole time an entry that reached the Stream carried (the other nodes know up to it). */
  #carriedMs = -1;
  /** XADDs issued so far (their order on the connection). */
  #sent = 0;
  /** The newest XADD that timed out and is not known applied yet (`at`: there is one). */
  #timedOut = { seq: 0, at: false };
  /** Retries the marker entry that tells the other nodes of a hole, while none carried it. */
  #retry: NodeJS.Timeout | undefined;

  constructor(redis: RedisClient, writes: RedisWriteQueue, prefix: string, window: RecoveryWindow, report: (err: unknown) => void) {
    this.#redis = redis;
    this.#writes = writes;
    // One hash slot for both keys (Redis Cluster).
    this.#key = `{${prefix}}:window`;
    this.#epochKey = `{${prefix}}:window-epoch`;
    this.#window = window;
    this.#windowMs = window.settings.windowMs;
    this.#slackMs = window.settings.slackMs;
    this.#maxBytes = window.settings.maxBytes;
    this.#report = report;
    // The connection closed with XADDs timed out and unanswered: they may never have reached Redis.
    redis.on('close', () => {
      const lost = this.#timedOut.at;
      this.#timedOut = { seq: 0, at: false };
      if (lost) this.#hole(Date.now());
    });
  }

  /** Takes the cluster's epoch from Redis, or makes ours the cluster's when there is none. */
  async start(): Promise<void> {
    await this.#redis.set(this.#epochKey, this.#window.epoch, 'NX');
    const epoch = await this.#redis.get(this.#epochKey);
    if (epoch !== null) this.#window.useEpoch(epoch);
  }

  /** Appends one send (its frame carries its id); not awaited: a failure is reported, marks a hole, and the send goes on. */
  readonly add = (id: string, kind: SendTargetKind, keys: readonly string[], event: string, listening: boolean, frame: Buffer): void => {
    const keysText = JSON.stringify(keys);
    const bytes = frame.length + keysText.length + event.length + id.length + 64;
    this.#meanBytes += (bytes - this.#meanBytes) / 64;
    const flag = listening ? '1' : '';
    this.#append(['i', id, 'k', kind, 't', keysText, 'e', event, 'l', flag, 'f', frame]);
    // One XADD cannot trim by both: the byte cap (as a count) every 256 sends.
    if ((++this.#added & 255) === 0) {
      const report = (err: unknown): void => this.#report(err);
      this.#redis.xtrim(this.#key, 'MAXLEN', '~', Math.max(1000, Math.floor(this.#maxBytes / this.#meanBytes))).catch(report);
    }
  };

  /** One XADD (a send, or the marker of a hole), carrying this node's newest hole. */
  #append(fields: (string | Buffer)[]): void {
    const now = Date.now();
    const minId = Math.max(0, now - this.#windowMs);
    // A hole older than the window no longer matters: a resume point before it is not covered anyway.
    if (this.#holeMs >= 0 && this.#holeMs < minId) this.#holeMs = this.#carriedMs = -1;
    const hole = this.#holeMs;
    const carried = hole >= 0 ? ['h', String(hole)] : [];
    const seq = ++this.#sent;
    this.#writes.add('xadd', [this.#key, 'MINID', '~', minId, '*', ...fields, ...carried]).then(
      () => {
        if (hole > this.#carriedMs) this.#carriedMs = hole;
        // A reply in order on the same connection: the XADDs that timed out before this one were applied.
        if (seq > this.#timedOut.seq) this.#timedOut = { seq: 0, at: false };
      },
      (err: unknown) => {
        this.#report(err);
        if (err instanceof Error && err.message === 'Command timed out') {
          // Written, not answered yet: applied unless the connection closes before a later reply.
          if (seq > this.#timedOut.seq) this.#timedOut = { seq, at: true };
          return;
        }
        // This send (or the marker) is not in the Stream: a hole. Its place in the Stream would
        // have been at latest now (its id's time may be much earlier, the sender stalled).
        this.#hole(Date.now());
      },
    );
  }

  /** A send that may not be in the Stream, known at `at`: resume points whose range starts before are not covered, here at once and on the other nodes once an entry carries it. */
  #hole(at: number): void {
    if (at > this.#holeMs) this.#holeMs = at;
    this.#retryMarker();
  }

  /** Writes a marker entry every second until an entry that carries the newest hole is in the Stream. */
  #retryMarker(): void {
    if (this.#retry !== undefined) return;
    this.#retry = setInterval(() => {
      if (this.#holeMs <= this.#carriedMs) {
        clearInterval(this.#retry);
        this.#retry = undefined;
        return;
      }
      this.#append(['k', 'hole']);
    }, 1000);
    this.#retry.unref();
  }

  /** Stops the marker's retries (the node closes). */
  close(): void {
    clearInterval(this.#retry);
    this.#retry = undefined;
  }

  /**
   * What a stream that saw `from` missed, from every node's sends since `slackMs` before it
   * (the client drops what it saw by id).
   * Not covered for an older epoch, a resume point older than the window, or one that the
   * trimming may have passed.
   */
  async since(from: WindowPosition, who: RecoveryTarget): Promise<WindowPart> {
    const now = Date.now();
    const lowerMs = from.ms - this.#slackMs;
    // This node's XADDs still queued go first: a send this node made before the stream was
    // registered here would otherwise be in neither the range nor live. Then plain
    // (auto-pipelined) commands, written after them.
    this.#writes.flush();
    const settled = (p: Promise<unknown>): Promise<[Error | null, unknown]> =>
      p.then(
        (v) => [null, v],
        (err: unknown) => [err instanceof Error ? err : new Error(String(err)), undefined],
      );
    // From `slackMs` before the resume point in the Stream's time, whichever the sender: what was
    // appended earlier was published earlier, so the page's node delivered it before the resume
    // point's event (the client drops what it saw by id).
    const [epochReply, infoReply, rangeReply] = await Promise.all([
      settled(this.#redis.get(this.#epochKey)),
      settled(this.#redis.xinfo('STREAM', this.#key)),
      settled(this.#redis.xrange(this.#key, String(Math.max(0, lowerMs)), '+')),
    ]);
    // Redis failing is not a lost history: the stream hears recovered false.
    if (epochReply[0] !== null) throw epochReply[0];
    if (rangeReply[0] !== null) throw rangeReply[0];
    const epoch = epochReply[1];
    if (typeof epoch !== 'string') {
      // The history is gone (Redis lost its data): a new epoch for what follows.
      await this.start();
      return { covered: false, frames: [] };
    }
    this.#window.useEpoch(epoch);
    if (!this.#window.knows(from.epoch) || from.ms < now - this.#windowMs) return { covered: false, frames: [] };
    // A send of this node that failed to reach the Stream after the replay range starts.
    if (this.#holeMs > lowerMs) return { covered: false, frames: [] };
    // No stream yet (nothing sent since Redis started the epoch): nothing was missed.
    const covered = infoReply?.[0] != null ? true : trimmedBefore(infoReply?.[1], lowerMs);
    if (!covered) return { covered: false, frames: [] };
    const frames: Buffer[] = [];
    for (const [, fields] of (rangeReply?.[1] ?? []) as [string, string[]][]) {
      const f = fieldsOf(fields);
      // Another node's send that failed to reach the Stream, after the replay range starts.
      if (f.h !== undefined && Number(f.h) > lowerMs) return { covered: false, frames: [] };
      // Bounded by the entry's place in the Stream (Redis's clock, when it was appended and
      // published), not by the time in its id (its sender's clock when it was sent): a sender
      // stalled between the two (a loaded machine) appends a send later than its id says, and
      // its peers deliver it after sends with later ids; a page that left meanwhile missed it.
      if (parseWindowId(f.i) === undefined) continue;
      let keys: string[];
      try {
        keys = JSON.parse(f.t ?? '[]') as string[];
      } catch {
        continue;
      }
      const entry = { kind: f.k as SendTargetKind, keys, event: f.e ?? '', listening: f.l === '1' };
      if (reaches(entry, who)) frames.push(Buffer.from(f.f ?? '', 'utf8'));
    }
    return { covered: true, frames };
  }
}

/** Whether every entry the stream trimmed is older than `lowerMs` (Redis time), from `XINFO STREAM`. */
function trimmedBefore(info: unknown, lowerMs: number): boolean {
  if (!Array.isArray(info)) return false;
  const m = new Map<string, unknown>();
  for (let i = 0; i + 1 < info.length; i += 2) m.set(String(info[i]), info[i + 1]);
  if (Number(m.get('entries-added')) === Number(m.get('length'))) return true;
  // Trimmed entries come before the first one left (or, all gone, up to the last generated).
  const first = m.get('first-entry');
  const bound = Array.isArray(first) ? String(first[0]) : String(m.get('last-generated-id'));
  return Number(bound.split('-')[0]) < lowerMs;
}

function fieldsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}
