/**
 * Errors a client promise rejects with. Every one has a stable string `code`, so a page can
 * tell "the server said no" from "we gave up waiting" without parsing messages. `send`,
 * `upload`, `addListener` and `removeListener` resolve to the `Response` of any answer;
 * `sendJson`, `uploadJson`, `listen` and `unlisten` reject an error answer with
 * {@link SseRequestError}.
 *
 * | code                            | when |
 * |---------------------------------|------|
 * | `ERR_SSE_QUEUE_FULL`            | offline and the queue already holds `maxQueueSize` requests |
 * | `ERR_SSE_QUEUE_TIMEOUT`         | still not sent `queueTimeout` ms after the call |
 * | `ERR_SSE_REQUEST_TIMEOUT`       | sent, but no answer within `requestTimeout` ms (it may have been processed) |
 * | `ERR_SSE_DESTROYED`             | `destroy()` was called before it settled |
 * | `ERR_SSE_CLOSED_BY_SERVER`      | the server closed the stream with `reconnect: false` (e.g. a kick) |
 * | `ERR_SSE_NETWORK`               | the request did not reach the server (retried internally; seen only in `lastError`) |
 * | server codes (`ERR_SSE_...`)    | the server answered with an error ({@link SseRequestError}) |
 */
export class SseClientError extends Error {
  /** Stable machine-readable code. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SseClientError';
    this.code = code;
  }
}

/** The server answered a request with an error status (from `sendJson`, `uploadJson`, `listen`, `unlisten`). */
export class SseRequestError extends SseClientError {
  /** HTTP status of the answer. */
  readonly status: number;
  /** The parsed answer body (JSON if it was JSON, else text). */
  readonly body: unknown;

  constructor(status: number, body: unknown) {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown; message?: unknown };
    const code = typeof b.code === 'string' ? b.code : `HTTP_${status}`;
    const message = typeof b.message === 'string' ? b.message : typeof body === 'string' && body ? body.slice(0, 200) : `HTTP ${status}`;
    super(code, message);
    this.name = 'SseRequestError';
    this.status = status;
    this.body = body;
  }
}

/** @internal The request never reached the server (fetch failed): safe to retry. */
export function isNetworkError(err: unknown): boolean {
  return err instanceof SseClientError && err.code === 'ERR_SSE_NETWORK';
}
