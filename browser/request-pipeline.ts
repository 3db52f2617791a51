import { Backoff } from './backoff.js';
import { SseClientError, isNetworkError } from './errors.js';
import { isUnknownConnection, type HttpAnswer } from './http.js';
import { rateLimitedFor } from './rate-limit.js';
import type { ResolvedOptions } from './options.js';
import { Outbox, PendingCall, type SseQueuedRequest } from './outbox.js';

/** What the pipeline needs from the client that owns it. */
export interface PipelineHost {
  /** The connection requests go over, or undefined while not connected. */
  connectionId(): string | undefined;
  /** The server no longer knows `connectionId`: the connection is gone, whatever the stream shows. */
  connectionLost(connectionId: string, error: unknown): void;
  /** The number of pending calls changed (a hidden tab may open or close its stream). */
  changed(): void;
  /** An attempt failed and will be retried (for diagnostics). */
  failed(error: unknown): void;
}

/** The options the pipeline reads, on use. */
export type PipelineOptions = Pick<ResolvedOptions, 'maxQueueSize' | 'queueTimeout' | 'maxReconnectTime'>;

/**
 * The browser-to-server requests of one client (`send`, `upload`, listener changes). While
 * connected and idle a call goes out at once; otherwise it waits in the bounded outbox and is
 * sent after the next connect, one at a time in call order. A call that did not reach the
 * server (network failure, or a connection the server forgot) goes back to its place and is
 * retried, as is one refused for now by a rate limit (`429 ERR_SSE_RATE_LIMITED`, after its
 * `Retry-After`); any other answer, success or error status, resolves it. Every call settles: answered, rejected,
 * timed out in the queue, refused when the queue is full, or rejected by {@link stop}.
 */
export class RequestPipeline {
  readonly #outbox: Outbox;
  readonly #retryBackoff: Backoff;
  readonly #abort = new AbortController();
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The retry timer waits out a rate limit's `Retry-After` (the network coming back does not end it). */
  #rateLimited = false;
  #inflight = 0;
  #draining = false;
  #seq = 0;

  readonly #host: PipelineHost;
  readonly #o: PipelineOptions;

  /** `retryBase`: the first retry's delay after a network failure (doubling up to `maxReconnectTime`). */
  constructor(host: PipelineHost, o: PipelineOptions, retryBase: () => number) {
    this.#host = host;
    this.#o = o;
    this.#outbox = new Outbox(() => o.maxQueueSize);
    this.#retryBackoff = new Backoff(retryBase, () => o.maxReconnectTime);
  }

  /** Calls waiting or in flight. */
  get pending(): number {
    return this.#outbox.size + this.#inflight;
  }

  /** What is waiting for a connection, oldest first. */
  waiting(): SseQueuedRequest[] {
    return this.#outbox.snapshot();
  }

  /**
   * Makes a call: `run` performs the HTTP request over the given connection. Resolves with
   * the answer of its (last) attempt.
   */
  submit(info: SseQueuedRequest, run: PendingCall['run']): Promise<HttpAnswer> {
    if (this.#abort.signal.aborted) return Promise.reject(this.#abort.signal.reason);
    return new Promise((resolve, reject) => {
      const call = new PendingCall(++this.#seq, this.#o.queueTimeout, info, run, resolve, reject);
      const idle = this.#outbox.size === 0 && !this.#draining && this.#retryTimer === undefined;
      if (idle && this.#host.connectionId() !== undefined) {
        void this.#execute(call).then((more) => (more ? this.drain() : undefined));
        return;
      }
      if (!this.#outbox.push(call)) {
        call.reject(new SseClientError('ERR_SSE_QUEUE_FULL', `${this.#o.maxQueueSize} requests already wait`));
        return;
      }
      this.#host.changed();
      void this.drain();
    });
  }

  /** Sends the waiting calls, oldest first, one at a time (so the server gets them in call order). */
  async drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#retryTimer === undefined && this.#host.connectionId() !== undefined) {
        const call = this.#outbox.shift();
        if (call === undefined) break;
        if (!(await this.#execute(call))) break;
      }
    } finally {
      this.#draining = false;
    }
  }

  /** A new connection: retry at once, with the backoff from the start. */
  connected(): void {
    this.#retryBackoff.reset();
    this.#clearRetryTimer();
    void this.drain();
  }

  /** The network is back: skip the rest of the retry backoff. */
  retryNow(): void {
    if (this.#retryTimer === undefined || this.#rateLimited) return;
    this.#clearRetryTimer();
    void this.drain();
  }

  /** Rejects the waiting calls (not those in flight). */
  rejectWaiting(reason: unknown): void {
    this.#outbox.rejectAll(reason);
  }

  /** For good: aborts the calls in flight, rejects the waiting ones and refuses new ones, all with `reason`. */
  stop(reason: unknown): void {
    this.#clearRetryTimer();
    this.#abort.abort(reason);
    this.#outbox.rejectAll(reason);
  }

  /**
   * One attempt. Resolves whether to go on draining: false if the call went back to the outbox
   * to wait (for a retry or the next connection).
   */
  async #execute(call: PendingCall): Promise<boolean> {
    const connectionId = this.#host.connectionId()!;
    this.#inflight++;
    try {
      const answer = await call.run(connectionId, this.#abort.signal);
      const retryAfter = rateLimitedFor(answer);
      if (retryAfter !== undefined) {
        // Refused for now, nothing changed: again once the server says, in call order.
        this.#host.failed(new SseClientError('ERR_SSE_RATE_LIMITED', `Rate limited, retry in ${retryAfter / 1000} s`));
        this.#outbox.requeue(call);
        this.#scheduleRetry(retryAfter);
        return false;
      }
      if (!isUnknownConnection(answer)) {
        call.resolve(answer);
        this.#retryBackoff.reset();
        return true;
      }
      // Not processed: the connection is gone whatever the stream shows. Again after the reconnect.
      const err = new SseClientError('ERR_SSE_UNKNOWN_CONNECTION', 'Unknown connection');
      this.#host.failed(err);
      this.#outbox.requeue(call);
      this.#host.connectionLost(connectionId, err);
      // A newer connection opened while this was in flight (a shared stream moved to another
      // tab): its `connected` found nothing waiting, so nothing else would wake the call.
      return this.#host.connectionId() !== connectionId;
    } catch (err) {
      if (!isNetworkError(err) || this.#abort.signal.aborted) {
        call.reject(err);
        return true;
      }
      this.#host.failed(err);
      this.#outbox.requeue(call);
      this.#scheduleRetry();
      return false;
    } finally {
      this.#inflight--;
      this.#host.changed();
    }
  }

  /** Drains again after `delayMs` (a rate limit's `Retry-After`), else after the next backoff step. */
  #scheduleRetry(delayMs?: number): void {
    if (this.#retryTimer !== undefined || this.#abort.signal.aborted) return;
    this.#rateLimited = delayMs !== undefined;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#rateLimited = false;
      void this.drain();
    }, delayMs ?? this.#retryBackoff.next());
  }

  #clearRetryTimer(): void {
    if (this.#retryTimer === undefined) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#rateLimited = false;
  }
}
