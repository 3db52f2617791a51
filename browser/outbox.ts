import { SseClientError } from './errors.js';
import type { HttpAnswer } from './http.js';

/** What a waiting call is, as `retryQueue` shows it. */
export interface SseQueuedRequest {
  type: 'send' | 'upload' | 'addListener' | 'removeListener' | 'join' | 'leave' | 'presence';
  /** The app path of a `send` or `upload`. */
  path?: string;
}

/**
 * One call (`send`, `upload`, a listener change) waiting for, or using, a connection. It
 * settles exactly once: with its answer, or rejected.
 */
export class PendingCall {
  /** Call order: replays keep it. */
  readonly seq: number;
  /** Until when it may wait for a connection (ms since epoch). */
  readonly deadline: number;
  #settled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** What it is (for `retryQueue`). */
  readonly info: SseQueuedRequest;
  /** Performs the HTTP request over the connection `connectionId`. */
  readonly run: (connectionId: string, signal: AbortSignal) => Promise<HttpAnswer>;
  readonly #onResolve: (value: HttpAnswer) => void;
  readonly #onReject: (reason: unknown) => void;

  constructor(
    seq: number,
    queueTimeout: number,
    info: SseQueuedRequest,
    run: (connectionId: string, signal: AbortSignal) => Promise<HttpAnswer>,
    onResolve: (value: HttpAnswer) => void,
    onReject: (reason: unknown) => void,
  ) {
    this.info = info;
    this.run = run;
    this.#onResolve = onResolve;
    this.#onReject = onReject;
    this.seq = seq;
    this.deadline = Date.now() + queueTimeout;
  }

  get settled(): boolean {
    return this.#settled;
  }

  resolve(value: HttpAnswer): void {
    if (this.#finish()) this.#onResolve(value);
  }

  reject(reason: unknown): void {
    if (this.#finish()) this.#onReject(reason);
  }

  /** @internal Arms or clears the wait timer (the outbox owns it). */
  setTimer(timer: ReturnType<typeof setTimeout> | undefined): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = timer;
  }

  #finish(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.setTimer(undefined);
    return true;
  }
}

/**
 * Calls waiting for a connection, in call order. Bounded in size and in time: a call that
 * does not fit is refused at once, and one that waits longer than its deadline is rejected,
 * so no promise is left pending forever.
 */
export class Outbox {
  readonly #calls: PendingCall[] = [];

  readonly #limit: () => number;

  constructor(limit: () => number) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#calls.length;
  }

  /** Queues a new call; false if the outbox is full (the call is then untouched). */
  push(call: PendingCall): boolean {
    if (this.#calls.length >= this.#limit()) return false;
    this.#insert(call);
    return true;
  }

  /** Puts back a call whose attempt failed before reaching the server; keeps call order. */
  requeue(call: PendingCall): void {
    if (!call.settled) this.#insert(call);
  }

  /** What is waiting, oldest first. */
  snapshot(): SseQueuedRequest[] {
    return this.#calls.map((call) => ({ ...call.info }));
  }

  /** Takes the oldest call, or undefined. */
  shift(): PendingCall | undefined {
    const call = this.#calls.shift();
    call?.setTimer(undefined);
    return call;
  }

  /** Rejects and removes every waiting call. */
  rejectAll(reason: unknown): void {
    for (const call of this.#calls.splice(0)) call.reject(reason);
  }

  #insert(call: PendingCall): void {
    const left = call.deadline - Date.now();
    if (left <= 0) {
      call.reject(timeoutError());
      return;
    }
    let i = this.#calls.length;
    while (i > 0 && this.#calls[i - 1]!.seq > call.seq) i--;
    this.#calls.splice(i, 0, call);
    call.setTimer(
      setTimeout(() => {
        const at = this.#calls.indexOf(call);
        if (at >= 0) this.#calls.splice(at, 1);
        call.reject(timeoutError());
      }, left),
    );
  }
}

function timeoutError(): SseClientError {
  return new SseClientError('ERR_SSE_QUEUE_TIMEOUT', 'Not connected in time; not sent');
}
