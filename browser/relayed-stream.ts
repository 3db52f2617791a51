import { SseClientError } from './errors.js';
import type { ParsedEvent } from './parser.js';
import type { StreamHandlers } from './stream.js';

/** What a follower tab's stream needs of its group. */
export interface RelayHost {
  attach(stream: RelayedStream): void;
  detach(stream: RelayedStream): void;
}

/**
 * A follower tab's stream: the leader tab's stream as relayed over the tabs' bus. It looks like
 * an {@link EventStream} to the client (events, then an end), so the client's state machine,
 * listeners, de-duplication and outbox work unchanged; `connect-finish` is the leader's.
 */
export class RelayedStream {
  /** The leader tab whose stream this is, once it answered. */
  leader: string | undefined;
  #closed = false;

  readonly #host: RelayHost;
  readonly #handlers: StreamHandlers;

  constructor(host: RelayHost, handlers: StreamHandlers) {
    this.#host = host;
    this.#handlers = handlers;
  }

  start(): void {
    this.#host.attach(this);
  }

  /** The leader watches its own stream's silence: nothing to do here. */
  setIdleLimit(): void {}

  /** Stops listening and tells the leader this tab no longer needs the stream. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.detach(this);
  }

  /** @internal The leader's stream is open: its `connect-finish`. */
  open(leader: string, data: string): void {
    this.leader = leader;
    this.feed({ type: 'connect-finish', data, id: undefined, lastEventId: '' });
  }

  /** @internal An event of the leader's stream. */
  feed(event: ParsedEvent): void {
    if (!this.#closed) this.#handlers.onEvent(event);
  }

  /** @internal The leader's stream ended or the leader changed: the client comes back at once (to the new leader). */
  end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.onRetry(0);
    this.#handlers.onEnd(new SseClientError('ERR_SSE_STREAM_ENDED', `The shared stream ended (${reason})`));
  }
}
