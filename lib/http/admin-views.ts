import type { ConnectionView, RedactedUser, StoredMessageView } from '../core/admin-api.js';
import type { ConnectionInfo } from '../core/connection-info.js';
import type { TargetRef } from '../core/targets.js';
import { hashToken } from '../core/token-hash.js';
import type { SseUser } from '../core/user.js';
import type { StoredEntry } from '../qos/qos-store.js';

// A stored message and its targets, as `repositoryMessages.json` reads them from the stores
// (token targets hold the token itself; the default view shows hashes).
export type { StoredEntry } from '../qos/qos-store.js';

/** The default admin view of a user (`redactUser`): never its token or other fields. */
export function defaultRedactUser(user: SseUser): RedactedUser {
  return { id: user.id ?? null, name: user.name ?? null, tenantId: user.tenantId ?? null };
}

/**
 * The default admin view of a connection: the snapshot with the user as `redactUser` shows
 * it, the page URL without query or fragment, and the Java library's field names.
 */
export function connectionView(info: ConnectionInfo, redactUser: (user: SseUser) => unknown): ConnectionView {
  const user = redactUser(info.user) as RedactedUser;
  const attributes = info.attributes;
  const view: ConnectionView = {
    ...info,
    user,
    createTime: info.createdAt,
    // A stream that never expires: Infinity here, null from a peer (JSON).
    expireTime: Number.isFinite(info.expiresAt) ? info.expiresAt : null,
    timeout: Number.isFinite(info.expiresAt) ? info.expiresAt - info.createdAt : 0,
    messageCount: info.eventsWritten,
    requestMessageCount: info.requests,
    requestUploadCount: info.uploads,
    lastRequestTime: info.lastRequestAt ?? null,
    accessUserId: info.userId ?? null,
    accessUser: user,
    accessUserName: typeof user?.name === 'string' ? user.name : null,
    requestIp: info.ip,
    requestDomain: info.domain,
    httpParameters: attributes,
    clientImportModuleTime: numberOf(attributes.clientImportModuleTime),
    clientInstanceId: typeof attributes.clientInstanceId === 'string' ? attributes.clientInstanceId : null,
    clientInstanceTime: numberOf(attributes.clientInstanceTime),
    totalJSHeapSize: numberOf(attributes.totalJSHeapSize),
    usedJSHeapSize: numberOf(attributes.usedJSHeapSize),
    jsHeapSizeLimit: numberOf(attributes.jsHeapSizeLimit),
  };
  // A page URL may carry a token in its query or fragment: admins see origin and path only.
  const href = info.locationHref?.replace(/[?#].*$/s, '');
  if (href !== undefined) view.locationHref = href;
  return view;
}

/** The Java library's bits of `Message.getFilters()`, per target kind. */
const JAVA_FILTER: Partial<Record<TargetRef['kind'], number>> = { tenant: 2, token: 4, user: 8, channel: 32 };
const JAVA_FILTER_LISTENER = 16;

/** The default admin view of a stored message: token targets as hashes, plus the Java library's field names. */
export function messageView({ message, targets }: StoredEntry): StoredMessageView {
  const lists: Record<'user' | 'tenant' | 'token' | 'channel', string[] | null> = { user: null, tenant: null, token: null, channel: null };
  let filters = message.listening ? JAVA_FILTER_LISTENER : 0;
  const shown = targets.map((t) => {
    const key = t.kind === 'token' ? hashToken(t.key) : t.key;
    if (t.kind !== 'all') (lists[t.kind] ??= []).push(key);
    filters |= JAVA_FILTER[t.kind] ?? 0;
    return t.kind === 'token' ? { kind: t.kind, keyHash: key } : { kind: t.kind, key };
  });
  return {
    id: message.id,
    kind: message.kind,
    event: message.event,
    data: message.data,
    listening: message.listening,
    createdAt: message.createdAt,
    expiresAt: message.expiresAt,
    targets: shown,
    eventName: message.event,
    body: parsed(message.data),
    listenerName: message.listening ? message.event : null,
    filters,
    userIdList: lists.user,
    tenantIdList: lists.tenant,
    accessTokenList: lists.token,
    channelList: lists.channel,
  };
}

/** A connect parameter that is a whole number (the Java client's ms times and heap sizes), else null. */
function numberOf(value: unknown): number | null {
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) return null;
  return Number(value);
}

/** The payload as the Java library held it (an object): JSON text parsed, anything else as is. */
function parsed(data: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return data;
  }
}
