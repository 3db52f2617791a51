/**
 * The error hierarchy. Every error the library throws or answers with has a stable string
 * `code` (never rename one: clients match on it) and the HTTP `status` it maps to.
 *
 * | code                          | status | when |
 * |-------------------------------|--------|------|
 * | `ERR_SSE_BAD_REQUEST`         | 400    | malformed JSON, missing or invalid parameter |
 * | `ERR_SSE_UNAUTHORIZED`        | 401    | `authenticate` returned null |
 * | `ERR_SSE_FORBIDDEN`           | 403    | not an admin, or the connection belongs to another user |
 * | `ERR_SSE_CROSS_SITE`          | 403    | an admin endpoint called from another site (`Sec-Fetch-Site` / `Origin`) |
 * | `ERR_SSE_UNKNOWN_CONNECTION`  | 404    | no live connection with that id |
 * | `ERR_SSE_NOT_FOUND`           | 404    | no endpoint at that path (under the base path) |
 * | `ERR_SSE_METHOD_NOT_ALLOWED`  | 405    | endpoint exists, wrong method |
 * | `ERR_SSE_PAYLOAD_TOO_LARGE`   | 413    | body or upload over its limit |
 * | `ERR_SSE_UNSUPPORTED_MEDIA`   | 415    | body of a content type the endpoint does not read |
 * | `ERR_SSE_TOO_MANY_LISTENERS`  | 400    | a connection's listener set would exceed `maxListenersPerConnection` |
 * | `ERR_SSE_TOO_MANY_CHANNELS`   | 400    | a connection's runtime channels would exceed `maxChannelsPerConnection` |
 * | `ERR_SSE_CHANNEL_DENIED`      | 403    | `authorizeChannel` refused a join (or is absent: joins are denied by default), or a connect's fixed `channel` |
 * | `ERR_SSE_TOO_MANY_CONNECTIONS`| 429    | per-user or global connection cap reached |
 * | `ERR_SSE_RATE_LIMITED`        | 429    | too many channel changes (`join.do` / `leave.do`) for the connection or user, page calls (`message/*.do`, `upload/*.do`, `ack.do`) for the connection, or publishes for an API key; `Retry-After` says when to retry |
 * | `ERR_SSE_INVALID_FIELD`       | 500    | (thrown, programming error) event name / id with CR, LF or NUL |
 * | `ERR_SSE_CLOSED`              | 503    | the hub is shutting down |
 * | `ERR_SSE_QUEUE_FULL`          | 507    | a durable send over the per-target or total cap |
 * | `ERR_SSE_TOO_FEW_COPIES`      | 503    | a durable send with `qos.replication.whenShort: 'fail'` could not be committed on `copies` nodes: nothing stored |
 * | `ERR_SSE_QOS_DISABLED`        | 500    | (thrown) `hub.qos` used without the `qos` option |
 * | `ERR_SSE_STORE_LOCKED`        | 500    | (thrown at start) another process holds the durable store file |
 * | `ERR_SSE_STORE_CORRUPT`       | 500    | (thrown at start) the durable store file fails its integrity check |
 * | `ERR_SSE_REDIS_UNAVAILABLE`   | 503    | Redis (cluster engine or durable store) is down, restarting or too slow: the call failed fast |
 * | `ERR_SSE_CLIENT_NOT_BUILT`    | 503    | the browser client bundle is missing (lib/http/script.ts) |
 * | `ERR_SSE_DASHBOARD_NOT_BUILT` | 503    | the dashboard bundle is missing (lib/http/dashboard.ts) |
 * | `ERR_SSE_PEER_DOWN`           | —      | (in `peer-error`, {@link SsePeerError}) a known peer that is down was not asked: its part is missing |
 * | `ERR_SSE_PEER_LATE`           | —      | (in `peer-error`) a peer got a send after its deadline: not counted; not written, unless it carries a recovery-window id (then written late) |
 * | `ERR_SSE_PEER_TIMEOUT`        | —      | (in `peer-error`, {@link SsePeerTimeoutError}) a peer did not answer within `cluster.timeoutMs` |
 * | `ERR_SSE_PEER_FAILED`         | —      | (in `peer-error`) a peer answered that the request failed there (Redis transport; the peer's text in `cause`) |
 * | `ERR_SSE_PEER_REFUSED`        | —      | (in `peer-error`) a peer answered with an HTTP error status (HTTP transport) |
 * | `ERR_SSE_PEER_UNVERIFIED`     | —      | (in `peer-error`) a peer's answer had no valid signature (HTTP transport) |
 * | `ERR_SSE_UNKNOWN_PEER`        | —      | (in `peer-error`) a request to a node that is not a verified peer (HTTP transport) |
 * | `ERR_SSE_DISCOVERY_FAILED`    | 503    | (reported in `error`) peer discovery failed, e.g. the DNS did not answer; the known peers stay |
 * | `ERR_SSE_MISSING_ENGINE`      | 500    | (thrown at start) an option needs an optional package that is not installed (better-sqlite3, ioredis, multicast-dns) |
 * | `ERR_SSE_UNSUPPORTED`         | 500    | (reported in `error`, once) an option this platform cannot honour, e.g. `deadStreamTimeoutMs` outside Linux |
 * | `ERR_SSE_NODE_ADDRESS`        | 500    | (reported in `error`, once at start) the address a cluster node announces may not reach its peers: which option to set |
 * | `ERR_SSE_PEER_PROTOCOL`       | 500    | (reported in `error`, once per node) a node of the group speaks another cluster protocol version: it is not a peer |
 * | `ERR_SSE_WORKERS_NOT_READY`   | 503    | (rejects `pool.ready()` / `pool.restart()` of `startWorkers`) the workers did not all serve and count each other as peers within `readyTimeoutMs` |
 */
export class SseError extends Error {
  /** Stable machine-readable code, e.g. `ERR_SSE_UNAUTHORIZED`. */
  readonly code: string;
  /** HTTP status this error is answered with. */
  readonly status: number;
  /** Whether `message` may be shown to the client (true for 4xx). */
  readonly expose: boolean;

  constructor(message: string, code: string, status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.expose = status >= 400 && status < 500;
  }
}

export class SseBadRequestError extends SseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_SSE_BAD_REQUEST', 400, options);
  }
}

export class SseUnauthorizedError extends SseError {
  constructor(message = 'Authentication required') {
    super(message, 'ERR_SSE_UNAUTHORIZED', 401);
  }
}

export class SseForbiddenError extends SseError {
  constructor(message = 'Forbidden') {
    super(message, 'ERR_SSE_FORBIDDEN', 403);
  }
}

export class SseCrossSiteError extends SseError {
  constructor(message = 'Cross-site requests to admin endpoints are refused') {
    super(message, 'ERR_SSE_CROSS_SITE', 403);
  }
}

export class SseUnknownConnectionError extends SseError {
  constructor(connectionId: string) {
    // The id is echoed truncated: it is the caller's own input, but keep logs short.
    super(`Unknown connection: ${connectionId.slice(0, 64)}`, 'ERR_SSE_UNKNOWN_CONNECTION', 404);
  }
}

export class SseNotFoundError extends SseError {
  constructor(path: string) {
    super(`No endpoint at ${path.slice(0, 200)}`, 'ERR_SSE_NOT_FOUND', 404);
  }
}

export class SseMethodNotAllowedError extends SseError {
  /** Methods the endpoint accepts, for the `Allow` header. */
  readonly allow: string[];
  constructor(allow: string[]) {
    super(`Method not allowed; use ${allow.join(', ')}`, 'ERR_SSE_METHOD_NOT_ALLOWED', 405);
    this.allow = allow;
  }
}

export class SsePayloadTooLargeError extends SseError {
  /** The limit that was exceeded, in bytes. */
  readonly limit: number;
  constructor(what: string, limit: number) {
    super(`${what} exceeds the limit of ${limit} bytes`, 'ERR_SSE_PAYLOAD_TOO_LARGE', 413);
    this.limit = limit;
  }
}

export class SseUnsupportedMediaTypeError extends SseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_SSE_UNSUPPORTED_MEDIA', 415, options);
  }
}

export class SseTooManyConnectionsError extends SseError {
  constructor(message: string) {
    super(message, 'ERR_SSE_TOO_MANY_CONNECTIONS', 429);
  }
}

/**
 * A call refused by a rate limit (`channelRateLimit`); nothing changed. Answered with
 * `Retry-After: {@link SseRateLimitedError.retryAfter}` and the same number as `data.retryAfter`.
 */
export class SseRateLimitedError extends SseError {
  /** Whole seconds until the limit allows the call again (at least 1). */
  readonly retryAfter: number;
  constructor(message: string, retryAfterMs: number) {
    const retryAfter = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super(`${message}: retry in ${retryAfter} s`, 'ERR_SSE_RATE_LIMITED', 429);
    this.retryAfter = retryAfter;
  }
}

/** A connection's listener set would exceed `maxListenersPerConnection`; nothing changed. */
export class SseTooManyListenersError extends SseError {
  constructor(limit: number) {
    super(`A connection may listen to at most ${limit} events`, 'ERR_SSE_TOO_MANY_LISTENERS', 400);
  }
}

/** A join would take a connection past `maxChannelsPerConnection`; nothing changed. */
export class SseTooManyChannelsError extends SseError {
  constructor(limit: number) {
    super(`A connection may join at most ${limit} channels`, 'ERR_SSE_TOO_MANY_CHANNELS', 400);
  }
}

/** `authorizeChannel` refused a join (or is absent), or a connect's fixed `channel` (no stream opened); nothing changed. */
export class SseChannelDeniedError extends SseError {
  /** The channel refused. */
  readonly channel: string;
  constructor(channel: string) {
    super(`Joining channel ${JSON.stringify(channel.slice(0, 128))} is not allowed`, 'ERR_SSE_CHANNEL_DENIED', 403);
    this.channel = channel;
  }
}

/** The durable store cannot be used: `ERR_SSE_STORE_LOCKED` or `ERR_SSE_STORE_CORRUPT`. */
export class SseStoreError extends SseError {
  constructor(message: string, code: 'ERR_SSE_STORE_LOCKED' | 'ERR_SSE_STORE_CORRUPT', options?: { cause?: unknown }) {
    super(message, code, 500, options);
  }
}

export class SseInvalidFieldError extends SseError {
  constructor(field: string) {
    super(`SSE ${field} must not contain CR, LF or NUL`, 'ERR_SSE_INVALID_FIELD', 500);
  }
}

export class SseClosedError extends SseError {
  constructor(what: string) {
    super(`${what} is closed`, 'ERR_SSE_CLOSED', 503);
  }
}

/** A durable send refused because a queue cap is reached; nothing was stored. */
export class SseQueueFullError extends SseError {
  constructor(message: string) {
    super(message, 'ERR_SSE_QUEUE_FULL', 507);
  }
}

/**
 * A durable send with `qos.replication.whenShort: 'fail'` could not be committed on
 * `copies` nodes (too few live nodes with a store, or a replica did not commit in time):
 * nothing is stored (what was committed is deleted again) and nothing was written.
 */
export class SseTooFewCopiesError extends SseError {
  /** Nodes that could hold it (or held it before it was deleted again). */
  readonly copies: number;
  /** Nodes asked for (`qos.replication.copies`). */
  readonly wanted: number;
  constructor(copies: number, wanted: number) {
    super(`A durable send needs ${wanted} copies but only ${copies} node(s) could commit it: nothing stored`, 'ERR_SSE_TOO_FEW_COPIES', 503);
    this.copies = copies;
    this.wanted = wanted;
  }
}

/** `hub.qos` used on a hub configured without `qos`. */
export class SseQosDisabledError extends SseError {
  constructor() {
    super('Durable delivery is not configured: pass the `qos: { file }` option', 'ERR_SSE_QOS_DISABLED', 500);
  }
}

/**
 * Redis did not answer in time or is not connected. Raised at once (never queued, never
 * retried behind the caller's back); the engine reconnects by itself and later calls work.
 */
export class SseRedisUnavailableError extends SseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_SSE_REDIS_UNAVAILABLE', 503, options);
  }
}

/**
 * Peer discovery failed (the DNS timed out or refused): the known peers are kept and the
 * next interval retries. Reported through the hub's `error` event, once per failure streak.
 */
export class SseDiscoveryError extends SseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_SSE_DISCOVERY_FAILED', 503, options);
  }
}

/**
 * An option needs an optional engine that is not installed: `qos.file` needs better-sqlite3,
 * `redis` options need ioredis, `discovery: 'mdns'` needs multicast-dns. Thrown when the
 * plugin or hub is made, naming the package to install and the option that needs it.
 */
export class SseMissingEngineError extends SseError {
  /** The npm package to install. */
  readonly packageName: string;

  constructor(packageName: string, neededBy: string, options?: { cause?: unknown }) {
    super(
      `Install ${packageName} to use ${neededBy} (npm install ${packageName}): it is an optional dependency`,
      'ERR_SSE_MISSING_ENGINE',
      500,
      options,
    );
    this.packageName = packageName;
  }
}

/**
 * An option was set that this platform cannot honour (e.g. `deadStreamTimeoutMs`, which needs
 * Linux's TCP_USER_TIMEOUT). Everything else runs; reported once through the hub's `error` event.
 */
export class SseUnsupportedError extends SseError {
  constructor(message: string) {
    super(message, 'ERR_SSE_UNSUPPORTED', 500);
  }
}

/**
 * The address a LAN cluster node announces is doubtful: only loopback, several interfaces and
 * no default route, or loopback announced over mDNS. The node still starts; the message says
 * what to set (`cluster.interface`, `cluster.advertise`). Reported through the hub's `error`
 * event, once at start.
 */
export class SseNodeAddressError extends SseError {
  constructor(message: string) {
    super(message, 'ERR_SSE_NODE_ADDRESS', 500);
  }
}

/**
 * A node of the same group speaks another major version of the cluster protocol (another
 * release of this package): it is never a peer. Reported through the hub's `error` event,
 * once per node and version.
 */
export class SsePeerProtocolError extends SseError {
  constructor(message: string) {
    super(message, 'ERR_SSE_PEER_PROTOCOL', 500);
  }
}

/**
 * The workers of `startWorkers` did not all serve, and verify each other as cluster peers,
 * within `readyTimeoutMs`: `pool.ready()` or `pool.restart()` rejects with it. The workers go
 * on (a peer may still come up); the message and {@link SseWorkersNotReadyError.missing} say
 * what was missing.
 */
export class SseWorkersNotReadyError extends SseError {
  /** What was missing when the time was up, e.g. `worker 2 does not serve yet`, `node a-w1 has not verified a-w2 (group app)`. */
  readonly missing: readonly string[];

  constructor(what: string, timeoutMs: number, missing: readonly string[]) {
    super(`${what}: not ready within ${timeoutMs} ms: ${missing.join('; ')}`, 'ERR_SSE_WORKERS_NOT_READY', 503);
    this.missing = missing;
  }
}

/** The codes of {@link SsePeerError}. */
export type SsePeerErrorCode =
  | 'ERR_SSE_PEER_DOWN'
  | 'ERR_SSE_PEER_LATE'
  | 'ERR_SSE_PEER_TIMEOUT'
  | 'ERR_SSE_PEER_FAILED'
  | 'ERR_SSE_PEER_REFUSED'
  | 'ERR_SSE_PEER_UNVERIFIED'
  | 'ERR_SSE_UNKNOWN_PEER';

/**
 * A cluster peer's part of an operation is missing (see the codes in the table above).
 * Reported in the hub's `peer-error` event, never thrown to a caller: the operation's
 * result is partial instead. A failure of the network itself (connection refused, reset)
 * keeps its own error and code (e.g. `ECONNREFUSED`).
 */
export class SsePeerError extends SseError {
  /** The peer's node id. */
  readonly nodeId: string;
  constructor(code: SsePeerErrorCode, nodeId: string, message: string, options?: { cause?: unknown }) {
    super(message, code, 503, options);
    this.nodeId = nodeId;
  }
}

/** A peer did not answer within the cluster's `timeoutMs` (any transport): `ERR_SSE_PEER_TIMEOUT`. */
export class SsePeerTimeoutError extends SsePeerError {
  constructor(nodeId: string, timeoutMs: number, options?: { cause?: unknown }) {
    super('ERR_SSE_PEER_TIMEOUT', nodeId, `Peer ${nodeId} did not answer within ${timeoutMs} ms`, options);
  }
}

/** A bundle the package serves (the browser client, the dashboard) was not built: `npm run build`. */
export class SseNotBuiltError extends SseError {
  constructor(what: string, code: 'ERR_SSE_CLIENT_NOT_BUILT' | 'ERR_SSE_DASHBOARD_NOT_BUILT') {
    super(`${what} is not built: run \`npm run build\``, code, 503);
  }
}

/**
 * Errors that only mean "the peer went away". They are not reported to `app.emit('error')`:
 * a client closing its tab is normal operation for a push server.
 */
export function isClientGoneError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ECONNABORTED' ||
    code === 'ERR_STREAM_DESTROYED' ||
    code === 'ERR_STREAM_WRITE_AFTER_END'
  );
}
