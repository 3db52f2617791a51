import type { SseListenerInput } from './listeners.js';
import type Sse from './sse.js';
import type { SseState } from './sse.js';

/**
 * Runs on every application event before its listeners; return `false` to drop the event.
 * `this` is the client.
 */
export type SseIntercept = (this: unknown, event: MessageEvent<string>) => boolean | void;

/** Options of {@link Sse}. Only `url` is needed; the rest keep the Java client's names and meaning. */
export interface SseOptions {
  /** Base path of the system, e.g. `/sse/hr` (the plugin's base path). Default `/api/sse`. */
  url?: string;
  /**
   * Listeners by event name: a function, an array of functions, or `null` to register the
   * name alone (the server is told; the window event bus forwards it). An array of names is
   * accepted too.
   */
  eventListeners?: SseListenerInput | readonly string[];
  /** Extra parameters on every request (connect and requests), e.g. `{ 'access-token': t }`. */
  query?: Record<string, string | number | boolean | null | undefined>;
  /** Identifies this browser; default: a random id kept in `localStorage` (`sseClientId`). */
  clientId?: string;
  /** When this visit began (ms); default: kept in `sessionStorage` (`sseAccessTimestamp`). */
  accessTimestamp?: number;
  /**
   * Base of the reconnect backoff, in ms: attempt n waits a random time in
   * [cap/2, cap], cap = min(maxReconnectTime, reconnectTime * 2^n). Default: the server's
   * `reconnectTime` from `connect-finish`, else 5000.
   */
  reconnectTime?: number;
  /** Longest wait between two reconnect attempts, in ms. Default `60000`. */
  maxReconnectTime?: number;
  /** Send cookies to a server on another origin (`credentials: 'include'`). Default `true`. */
  withCredentials?: boolean;
  /**
   * Also dispatch every event that has a registered name on `window`, as a `CustomEvent`
   * whose `detail` is `{ data, lastEventId, url }` (and which has `data`, `lastEventId` and
   * `url` properties like the Java client's events). Default `true`.
   */
  useWindowEventBus?: boolean;
  /** Run on every application event before its listeners (see {@link SseIntercept}). */
  intercepts?: readonly SseIntercept[];
  /** Stream lifetime to ask the server for, in ms (it clamps it). Default: the server's. */
  keepaliveTime?: number;
  /** How long a hidden tab keeps its stream before closing it, in ms. Default `2000`. */
  hiddenGraceTime?: number;
  /** Most requests waiting for a connection; beyond it a call rejects (`ERR_SSE_QUEUE_FULL`). Default `100`. */
  maxQueueSize?: number;
  /** Longest a request waits for a connection, in ms (`ERR_SSE_QUEUE_TIMEOUT`). Default `30000`. */
  queueTimeout?: number;
  /** Longest a sent request waits for its answer, in ms (`ERR_SSE_REQUEST_TIMEOUT`). Default `60000`. */
  requestTimeout?: number;
  /** Connect with `ack=1` and acknowledge durable events (batched, `ack.do`). Default `true`. */
  ack?: boolean;
  /** Resume point for durable retained messages; default: the last id this tab saw (`sessionStorage`). */
  lastEventId?: string;
  /** Connect immediately (when the tab is visible). Default `true`; else call `connect()`. */
  autoConnect?: boolean;
  /** Called on every change of {@link Sse.state} (e.g. to show it); `lastError` tells why a connect failed. */
  onStateChange?: (state: SseState, client: Sse) => void;
}

/** @internal Options with defaults applied. */
export interface ResolvedOptions {
  url: string;
  query: Record<string, string>;
  reconnectTime: number | undefined;
  maxReconnectTime: number;
  withCredentials: boolean;
  useWindowEventBus: boolean;
  intercepts: readonly SseIntercept[];
  keepaliveTime: number | undefined;
  hiddenGraceTime: number;
  maxQueueSize: number;
  queueTimeout: number;
  requestTimeout: number;
  ack: boolean;
  onStateChange: ((state: SseState, client: Sse) => void) | undefined;
}

/** @internal */
export function resolveOptions(options: SseOptions): ResolvedOptions {
  return {
    url: normalizeUrl(options.url ?? '/api/sse'),
    query: stringQuery(options.query),
    reconnectTime: optionalMs(options.reconnectTime, 'reconnectTime'),
    maxReconnectTime: ms(options.maxReconnectTime, 'maxReconnectTime', 60_000),
    withCredentials: options.withCredentials ?? true,
    useWindowEventBus: options.useWindowEventBus ?? true,
    intercepts: [...(options.intercepts ?? [])],
    keepaliveTime: optionalMs(options.keepaliveTime, 'keepaliveTime'),
    hiddenGraceTime: ms(options.hiddenGraceTime, 'hiddenGraceTime', 2000, true),
    maxQueueSize: ms(options.maxQueueSize, 'maxQueueSize', 100, true),
    queueTimeout: ms(options.queueTimeout, 'queueTimeout', 30_000),
    requestTimeout: ms(options.requestTimeout, 'requestTimeout', 60_000),
    ack: options.ack ?? true,
    onStateChange: options.onStateChange,
  };
}

/** @internal A base path without trailing slashes. */
export function normalizeUrl(url: string): string {
  if (typeof url !== 'string' || url === '') throw new TypeError('url must be a non-empty string');
  return url.replace(/\/+$/, '');
}

/** @internal */
export function stringQuery(query: SseOptions['query']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null) out[key] = String(value);
  }
  return out;
}

function ms(value: number | undefined, name: string, fallback: number, zeroOk = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(zeroOk ? value >= 0 : value > 0))
    throw new TypeError(`${name} must be a ${zeroOk ? 'non-negative' : 'positive'} number`);
  return value;
}

function optionalMs(value: number | undefined | null, name: string): number | undefined {
  return value === undefined || value === null ? undefined : ms(value, name, 0);
}
