import type { SseListenerInput } from './listeners.js';
import type { SseStateName } from './states.js';

/**
 * Runs on every application event before its listeners; return `false` to drop the event.
 * `this` is the client.
 */
export type SseIntercept = (this: unknown, event: MessageEvent<string>) => boolean | void;

/** What the client uses of `JSON` (the `jsonGlobal` option). */
export type SseJson = Pick<JSON, 'parse' | 'stringify'>;

/**
 * Options of {@link Sse}: the Java client's, with its defaults (see `Sse.DEFAULT_OPTIONS`),
 * and this client's own (reconnect backoff, queue, hidden tabs, durable delivery).
 */
/**
 * What {@link SseOptions.onStateChange} is told of the client when the options are typed
 * apart from it (a `const options: SseOptions`); `new Sse({ onStateChange })` gives the
 * handler the `Sse` itself. Declared here so that the options need not name the client
 * (they and the client would otherwise import each other).
 */
export interface SseClientView {
  readonly stateName: SseStateName;
  readonly connectionId: string | undefined;
  readonly lastError: unknown;
  isActive(): boolean;
  connect(): void;
  close(reason?: string): void;
}

export interface SseOptions<Client = SseClientView> {
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
  /** Identifies this browser; default (`null`): a random id kept in `localStorage` (`sseClientId`). */
  clientId?: string | null;
  /** When this visit began (ms); default (`null`): kept in `sessionStorage` (`sseAccessTimestamp`). */
  accessTimestamp?: number | null;
  /**
   * Base of the reconnect backoff, in ms: attempt n waits a random time in
   * [cap/2, cap], cap = min(maxReconnectTime, reconnectTime * 2^n). Default (`null`): the
   * server's `reconnectTime` from `connect-finish`, else 5000.
   */
  reconnectTime?: number | null;
  /** Longest wait between two reconnect attempts, in ms. Default `60000`. */
  maxReconnectTime?: number;
  /** Send cookies to a server on another origin (`credentials: 'include'`). Default `true`. */
  withCredentials?: boolean;
  /**
   * Also dispatch every event that has a registered name (and `sse-change-active`) on
   * `window`, as a `MessageEvent` of the same type with `url` set to the system's url.
   * Default `true`.
   */
  useWindowEventBus?: boolean;
  /** Run on every application event before its listeners (see {@link SseIntercept}). */
  intercepts?: readonly SseIntercept[];
  /** Stream lifetime to ask the server for, in ms (it clamps it); `null` asks nothing. Default `900000`. */
  keepaliveTime?: number | null;
  /** The user counts as idle after this many ms without `mouseover` or `click`. Default `5000`. */
  leaveTimeout?: number;
  /** How often idle detection looks, in ms. Default `500`. */
  leaveCheckInterval?: number;
  /** `sessionStorage` key of the online seconds. Default (`''`): `'sseDuration' + url`. */
  sseDurationKey?: string;
  /** The window used for storage, the window event bus and page events. Default `window`. */
  windowGlobal?: Window;
  /** The document used for visibility and idle detection. Default `document`. */
  documentGlobal?: Document;
  /** The JSON used to parse events and encode bodies. Default `JSON`. */
  jsonGlobal?: SseJson;
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
  /**
   * One stream for all tabs of this origin that use the same `url` and `query`: one tab (the
   * leader, elected with Web Locks) holds it, the others get its events over a
   * BroadcastChannel (see docs/browser-client.md, "Shared tabs"). Ignored where Web Locks or BroadcastChannel
   * are missing: each tab then has its own stream. Default `false`.
   */
  shareAcrossTabs?: boolean;
  /** Called on every change of the client's `stateName`; `lastError` tells why a connect failed. */
  onStateChange?: ((state: SseStateName, client: Client) => void) | undefined;
}

/**
 * The defaults (`Sse.DEFAULT_OPTIONS`). As in the Java client, a page may change them before
 * creating clients (e.g. `Sse.DEFAULT_OPTIONS.url = '/sse/hr'`).
 */
export const DEFAULT_OPTIONS: SseOptions = {
  url: '/api/sse',
  keepaliveTime: 900_000,
  eventListeners: {},
  intercepts: [],
  query: {},
  withCredentials: true,
  clientId: null,
  accessTimestamp: null,
  reconnectTime: null,
  useWindowEventBus: true,
  leaveTimeout: 5000,
  leaveCheckInterval: 500,
  sseDurationKey: '',
  windowGlobal: typeof window === 'undefined' ? undefined : window,
  documentGlobal: typeof document === 'undefined' ? undefined : document,
  jsonGlobal: JSON,
  maxReconnectTime: 60_000,
  hiddenGraceTime: 2000,
  maxQueueSize: 100,
  queueTimeout: 30_000,
  requestTimeout: 60_000,
  ack: true,
  autoConnect: true,
  shareAcrossTabs: false,
};

/** @internal Options with defaults applied. */
export interface ResolvedOptions<Client = SseClientView> {
  url: string;
  query: Record<string, string>;
  reconnectTime: number | undefined;
  maxReconnectTime: number;
  withCredentials: boolean;
  useWindowEventBus: boolean;
  intercepts: readonly SseIntercept[];
  keepaliveTime: number | undefined;
  leaveTimeout: number;
  leaveCheckInterval: number;
  /** Empty: derived from the url. */
  sseDurationKey: string;
  windowGlobal: Window | undefined;
  documentGlobal: Document | undefined;
  json: SseJson;
  hiddenGraceTime: number;
  maxQueueSize: number;
  queueTimeout: number;
  requestTimeout: number;
  ack: boolean;
  autoConnect: boolean;
  shareAcrossTabs: boolean;
  onStateChange: ((state: SseStateName, client: Client) => void) | undefined;
}

/** Options that are a positive number (ms). */
const POSITIVE = ['maxReconnectTime', 'leaveTimeout', 'leaveCheckInterval', 'queueTimeout', 'requestTimeout'] as const;
/** Options that are a number ≥ 0 (ms, a count). */
const NON_NEGATIVE = ['hiddenGraceTime', 'maxQueueSize'] as const;
/** Options where null or undefined is none, else a positive number. */
const OPTIONAL_NUMBERS = ['reconnectTime', 'keepaliveTime'] as const;

/**
 * @internal The page's options over `DEFAULT_OPTIONS` (an `undefined` value keeps the default),
 * checked. Keeps the page's other fields (unused).
 */
export function resolveOptions<Client extends SseClientView>(options: SseOptions<Client>): ResolvedOptions<Client> {
  const o: Record<string, unknown> = { ...DEFAULT_OPTIONS };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) o[key] = value;
  for (const name of POSITIVE) checkNumber(o[name], name);
  for (const name of NON_NEGATIVE) checkNumber(o[name], name, true);
  for (const name of OPTIONAL_NUMBERS) o[name] = o[name] === null || o[name] === undefined ? undefined : checkNumber(o[name], name);
  const given = o as SseOptions<Client>;
  // `o` has every default; `??` again only where a page's null means the default.
  return {
    ...(given as ResolvedOptions<Client>),
    url: normalizeUrl(given.url ?? DEFAULT_OPTIONS.url!),
    query: stringQuery(given.query),
    withCredentials: given.withCredentials ?? true,
    useWindowEventBus: given.useWindowEventBus ?? true,
    intercepts: [...(given.intercepts ?? [])],
    sseDurationKey: typeof given.sseDurationKey === 'string' ? given.sseDurationKey : '',
    json: given.jsonGlobal ?? JSON,
    ack: given.ack ?? true,
    autoConnect: given.autoConnect ?? true,
    shareAcrossTabs: given.shareAcrossTabs === true,
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

/** A number option, checked: > 0, or ≥ 0 with `zeroOk`. */
function checkNumber(value: unknown, name: string, zeroOk = false): number {
  if (typeof value !== 'number' || !(zeroOk ? value >= 0 : value > 0)) throw new TypeError(`${name} must be a number ${zeroOk ? '>= 0' : '> 0'}`);
  return value;
}
