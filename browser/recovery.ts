import { RecentIds } from './recent-ids.js';

/** The id of an ordinary event (the server's recovery window): `epoch.ms.seq.node`, dots and all; durable ids are plain hex. */
const WINDOW_ID = /^[0-9a-z]{10}\.[0-9a-z]{1,11}\.[0-9a-z]{1,6}\.[0-9a-f]{6}$/;

/** Ordinary event ids remembered to drop the overlap of a replay: a replay from another node may repeat a few seconds. */
const RECENT_WINDOW_IDS = 4096;

/** What `connect-finish` said of the last connect's recovery (the `sse-recovery` event's data). */
export interface SseRecoveryInfo {
  /** The stream resumed and got every ordinary event it missed (`connect-finish.recovered`). */
  recovered: boolean;
  /** This connect asked to resume (an ordinary event was seen before); false on a first connect. */
  resumed: boolean;
  /** The server's recovery window epoch, `null` without a window. */
  epoch: string | null;
}

/**
 * The resume point of ordinary events and their de-duplication: the id of the last one seen
 * goes with the next connect (`recover`), and one seen already (a replay overlapping what
 * came live) is dropped. In memory only: a new page loads fresh state and resumes nothing.
 */
export class WindowResume {
  readonly #recent = new RecentIds(RECENT_WINDOW_IDS);
  #last = '';
  #info: SseRecoveryInfo | undefined;

  /** Whether `id` is an ordinary event's id (not a durable one). */
  static is(id: string): boolean {
    return WINDOW_ID.test(id);
  }

  /** The resume point for the next connect, `''` when none. */
  get from(): string {
    return this.#last;
  }

  /** What the last `connect-finish` said. */
  get info(): SseRecoveryInfo | undefined {
    return this.#info;
  }

  /** Notes an ordinary event's id; false when it was seen already (drop it). */
  take(id: string): boolean {
    if (this.#recent.has(id)) return false;
    this.#recent.add(id);
    this.#last = id;
    return true;
  }

  /** Reads `connect-finish`: whether the connect that sent `from` resumed. */
  finished(data: { recovered?: unknown; epoch?: unknown }, from: string): SseRecoveryInfo {
    this.#info = { recovered: data.recovered === true, resumed: from !== '', epoch: typeof data.epoch === 'string' ? data.epoch : null };
    return this.#info;
  }
}
