/** What a connect tells the server besides the page's own `query`. */
export interface ConnectFacts {
  sessionDuration: number;
  keepaliveTime: number | undefined;
  clientId: string;
  clientVersion: string;
  accessTime: number;
  listeners: readonly string[];
  /** Channels joined at runtime, asked for again. */
  channels: readonly string[];
  useWindowEventBus: boolean;
  importModuleTime: number;
  instanceTime: number;
  instanceId: string;
  ack: boolean;
  lastEventId: string;
  /** The last ordinary event's id (the recovery window's resume point), `''` when none. */
  recover?: string;
}

/** Chromium's non-standard `performance.memory`. */
interface MemoryInfo {
  jsHeapSizeLimit?: number;
  totalJSHeapSize?: number;
  usedJSHeapSize?: number;
}

/**
 * The connect query: the Java client's fields in its order, then this client's
 * (`ack`, `lastEventId`, and `reconnectOnClose=1`: it understands `connect-close` with
 * `reconnect: true`, so the server may send it one instead of just ending the stream), then
 * the page's `query`. A page parameter cannot replace a protocol field.
 */
export function connectParams(facts: ConnectFacts, query: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = { sessionDuration: String(facts.sessionDuration) };
  if (facts.keepaliveTime !== undefined) params.keepaliveTime = String(facts.keepaliveTime);
  params.clientId = facts.clientId;
  params.clientVersion = facts.clientVersion;
  if (typeof screen !== 'undefined') params.screen = `${screen.width}x${screen.height}`;
  params.accessTime = String(facts.accessTime);
  params.listeners = facts.listeners.join(',');
  params.useWindowEventBus = String(facts.useWindowEventBus);
  if (typeof location !== 'undefined') params.locationHref = location.href.slice(0, 2048);
  params.clientImportModuleTime = String(facts.importModuleTime);
  params.clientInstanceTime = String(facts.instanceTime);
  params.clientInstanceId = facts.instanceId;
  const memory = typeof performance === 'undefined' ? undefined : (performance as Performance & { memory?: MemoryInfo }).memory;
  if (memory !== undefined) {
    for (const key of ['jsHeapSizeLimit', 'totalJSHeapSize', 'usedJSHeapSize'] as const) {
      if (typeof memory[key] === 'number') params[key] = String(memory[key]);
    }
  }
  if (facts.channels.length > 0) params.channels = facts.channels.join(',');
  if (facts.ack) params.ack = '1';
  if (facts.lastEventId !== '') params.lastEventId = facts.lastEventId;
  if (facts.recover !== undefined && facts.recover !== '') params.recover = facts.recover;
  params.reconnectOnClose = '1';
  for (const [key, value] of Object.entries(query)) if (key !== '__proto__' && !Object.hasOwn(params, key)) params[key] = value;
  return params;
}
