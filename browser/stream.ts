import { parseBody } from './http.js';
import { SseClientError, SseRequestError } from './errors.js';
import { EventStreamParser, type ParsedEvent } from './parser.js';

/** What an {@link EventStream} reports. Neither is called after `close()`. */
export interface StreamHandlers {
  onEvent(event: ParsedEvent): void;
  /** A `retry:` field: the server's reconnect delay, in ms. */
  onRetry(ms: number): void;
  /** The stream is over: `error` is why (an HTTP error, a network error, silence), undefined for a clean end. */
  onEnd(error: unknown): void;
}

/**
 * One text/event-stream response read with `fetch`. Unlike `EventSource` it shows the HTTP
 * status of a refused connect, tells which frames carry an `id:`, never reconnects by itself
 * (the client does, with backoff), and detects a dead peer: no byte (not even a heartbeat)
 * for `idleLimit` ms ends it.
 */
export class EventStream {
  readonly #abort = new AbortController();
  #closed = false;
  #lastByteAt = Date.now();
  #idleLimit: number;
  #watchdog: ReturnType<typeof setTimeout> | undefined;

  readonly #url: string;
  readonly #credentials: RequestCredentials;
  readonly #handlers: StreamHandlers;

  constructor(url: string, credentials: RequestCredentials, handlers: StreamHandlers, idleLimit: number) {
    this.#url = url;
    this.#credentials = credentials;
    this.#handlers = handlers;
    this.#idleLimit = idleLimit;
  }

  /** Starts reading. */
  start(): void {
    this.#arm(this.#idleLimit);
    void this.#read();
  }

  /** Sets how long silence may last (the server's heartbeat interval says how long is normal). */
  setIdleLimit(ms: number): void {
    this.#idleLimit = ms;
    if (this.#closed) return;
    clearTimeout(this.#watchdog);
    this.#arm(Math.max(0, ms - (Date.now() - this.#lastByteAt)));
  }

  /** Stops reading; no handler is called any more. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    this.#abort.abort();
  }

  async #read(): Promise<void> {
    let error: unknown;
    try {
      const res = await fetch(this.#url, {
        headers: { accept: 'text/event-stream' },
        credentials: this.#credentials,
        cache: 'no-store',
        signal: this.#abort.signal,
      });
      if (!res.ok || res.body === null) {
        throw new SseRequestError(res.status, parseBody(await res.text().catch(() => ''), res.headers.get('content-type')));
      }
      if (!/^text\/event-stream/i.test(res.headers.get('content-type') ?? '')) {
        throw new SseClientError('ERR_SSE_NOT_A_STREAM', `Not text/event-stream: ${res.headers.get('content-type')}`);
      }
      const parser = new EventStreamParser(
        (event) => {
          if (!this.#closed) this.#handlers.onEvent(event);
        },
        (ms) => {
          if (!this.#closed) this.#handlers.onRetry(ms);
        },
      );
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed) break;
        this.#lastByteAt = Date.now();
        parser.feed(value);
      }
    } catch (err) {
      error = err instanceof SseClientError ? err : new SseClientError('ERR_SSE_NETWORK', 'Stream failed', { cause: err });
    }
    this.#end(error);
  }

  #arm(delay: number): void {
    this.#watchdog = setTimeout(() => {
      const idle = Date.now() - this.#lastByteAt;
      if (idle < this.#idleLimit) return this.#arm(this.#idleLimit - idle);
      this.#end(new SseClientError('ERR_SSE_STALE', `No data for ${idle} ms`));
    }, delay);
  }

  #end(error: unknown): void {
    if (this.#closed) return;
    this.close();
    this.#handlers.onEnd(error);
  }
}
