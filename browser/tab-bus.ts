import { SseClientError } from './errors.js';
import type { HttpAnswer } from './http.js';
import type { ParsedEvent } from './parser.js';

/** What a tab tells the leader about itself: the union of these is what the shared connection has. */
export interface TabState {
  listeners: string[];
  channels: string[];
}

/** A request a tab makes through the leader's connection (it changes what the connection is a member of). */
export type TabRequest = { op: 'listeners'; names: string[] } | { op: 'join'; channels: string[] } | { op: 'leave'; channels: string[] };

/** The leader's answer to a {@link TabRequest}: an HTTP answer, rebuilt into a `Response` by the tab. */
export interface TabAnswer {
  status: number;
  body: unknown;
  /** The channels the connection is a member of after the change. */
  server?: string[];
  /** The leader's request failed without an answer (e.g. `ERR_SSE_NETWORK`: the tab's outbox retries it). */
  error?: { code: string; message: string };
}

/** The messages of one group of tabs. `from` is the sender's tab id; `to`, when set, the only tab it is for. */
export type TabMessage =
  | { t: 'leader'; from: string }
  | { t: 'attach'; from: string; state: TabState; since: string }
  | { t: 'state'; from: string; state: TabState }
  | { t: 'detach'; from: string }
  | { t: 'open'; from: string; to?: string; data: string }
  | { t: 'event'; from: string; to?: string; event: ParsedEvent }
  | { t: 'end'; from: string; reason: string }
  | { t: 'server-channels'; from: string; channels: string[] }
  | { t: 'delivered'; from: string; to: string; ids: string[] }
  | { t: 'req'; from: string; to: string; id: number; req: TabRequest }
  | { t: 'res'; from: string; to: string; id: number; answer: TabAnswer };

/**
 * The tabs' message bus: one `BroadcastChannel` per group. A message reaches every other tab
 * of the group (never the sender); one addressed `to` a tab is ignored by the others.
 */
export class TabBus {
  readonly #channel: BroadcastChannel;

  constructor(name: string, self: string, onMessage: (message: TabMessage) => void) {
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (e: MessageEvent<TabMessage>) => {
      const m = e.data;
      if (typeof m !== 'object' || m === null || m.from === self) return;
      if ('to' in m && m.to !== undefined && m.to !== self) return;
      onMessage(m);
    };
  }

  post(message: TabMessage): void {
    try {
      this.#channel.postMessage(message);
    } catch {
      // closed: the tab is leaving
    }
  }

  close(): void {
    this.#channel.onmessage = null;
    this.#channel.close();
  }
}

/** A success answer in the default envelope. */
export function ok(data: unknown): TabAnswer {
  return { status: 200, body: { success: true, code: 200, data, message: null, errorMessage: null } };
}

/** The answer for a tab whose connection the leader no longer has. */
export function unknownConnection(): TabAnswer {
  return { status: 404, body: { success: false, code: 'ERR_SSE_UNKNOWN_CONNECTION', message: 'The shared connection is gone' } };
}

/** A failed request (no answer), to send to the tab. */
export function errorAnswer(err: unknown): TabAnswer {
  const code = err instanceof SseClientError ? err.code : 'ERR_SSE_NETWORK';
  return { status: 0, body: null, error: { code, message: err instanceof Error ? err.message : String(err) } };
}

/** An answer relayed by the leader, as the tab's own request would have had it. */
export function toHttpAnswer(answer: TabAnswer): HttpAnswer {
  if (answer.error !== undefined) throw new SseClientError(answer.error.code, answer.error.message);
  const response = new Response(JSON.stringify(answer.body), { status: answer.status, headers: { 'content-type': 'application/json' } });
  return { response, body: answer.body };
}
