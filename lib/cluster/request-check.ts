import { SseBadRequestError } from '../core/errors.js';
import type { ConnectionFilter } from '../core/queries.js';
import type { ClusterRequest } from './messages.js';

/**
 * Checks a request from a peer against the shapes of {@link ClusterRequest} before any of it is
 * acted on: a malformed one (another version's, or a faulty peer's) is refused whole with
 * `ERR_SSE_BAD_REQUEST`, instead of failing halfway with a TypeError or doing something else
 * (keys given as a string would be read letter by letter; a query named `constructor` would
 * run `Object`). Fields it does not know are ignored; it answers the same object.
 *
 * @throws SseBadRequestError naming the first field that is wrong
 */
export function checkClusterRequest(value: unknown): ClusterRequest {
  const r = objectOf(value, 'request');
  const type = r.type;
  switch (type) {
    case 'hello':
      break;
    case 'send':
      arrayOf(r.items, 'items', (item, at) => {
        const i = objectOf(item, at);
        sendKind(i.kind, `${at}.kind`);
        strings(i.keys, `${at}.keys`);
        fieldText(i.event, `${at}.event`);
        string(i.data, `${at}.data`);
        boolean(i.listening, `${at}.listening`);
        if (i.id !== undefined) fieldText(i.id, `${at}.id`);
        if (i.wid !== undefined) fieldText(i.wid, `${at}.wid`);
      });
      if (r.deadline !== undefined) number(r.deadline, 'deadline');
      break;
    case 'query':
      queryArgs(r.name, r.args);
      break;
    case 'disconnect':
      sendKind(r.kind, 'kind');
      strings(r.keys, 'keys');
      boolean(r.reconnect, 'reconnect');
      oneOf(r.reason, 'reason', DISCONNECT_REASONS);
      if (r.record !== undefined) objectOf(r.record, 'record');
      break;
    case 'duration':
      sendKind(r.kind, 'kind');
      strings(r.keys, 'keys');
      number(r.seconds, 'seconds');
      break;
    case 'clear-duration':
      sendKind(r.kind, 'kind');
      strings(r.keys, 'keys');
      break;
    case 'keep-duration':
      oneOf(r.kind, 'kind', KEPT_KINDS);
      strings(r.keys, 'keys');
      if (r.seconds !== null) number(r.seconds, 'seconds');
      break;
    case 'siblings':
      string(r.clientKey, 'clientKey');
      break;
    case 'listeners':
      string(r.connectionId, 'connectionId');
      strings(r.names, 'names');
      boolean(r.add, 'add');
      break;
    case 'channels':
      oneOf(r.kind, 'kind', CHANNEL_KINDS);
      strings(r.keys, 'keys');
      strings(r.channels, 'channels');
      boolean(r.join, 'join');
      break;
    case 'connection-channels':
      string(r.connectionId, 'connectionId');
      strings(r.channels, 'channels');
      boolean(r.join, 'join');
      break;
    case 'member-state':
      arrayOf(r.items, 'items', (item, at) => {
        const i = objectOf(item, at);
        string(i.channel, `${at}.channel`);
        string(i.userId, `${at}.userId`);
        if (i.held !== undefined) boolean(i.held, `${at}.held`);
      });
      break;
    case 'members':
      break;
    case 'qos-pending':
      pendingRequest(r, 'request');
      break;
    case 'qos-pending-batch':
      arrayOf(r.requests, 'requests', (item, at) => pendingRequest(objectOf(item, at), at));
      break;
    case 'qos-list': {
      const f = objectOf(r.filter, 'filter');
      for (const key of ['userId', 'accessToken', 'tenantId', 'channel'] as const) if (f[key] !== undefined) string(f[key], `filter.${key}`);
      if (f.listeners !== undefined) strings(f.listeners, 'filter.listeners');
      count(r.limit, 'limit');
      break;
    }
    case 'qos-ack':
      arrayOf(r.items, 'items', (item, at) => {
        const i = objectOf(item, at);
        string(i.messageId, `${at}.messageId`);
        targetRefs(i.targets, `${at}.targets`);
      });
      string(r.connectionId, 'connectionId');
      oneOf(r.by, 'by', ACKED_BY);
      break;
    case 'window': {
      fieldText(r.from, 'from');
      const who = objectOf(r.who, 'who');
      for (const key of ['userId', 'accessToken', 'tenantId'] as const) if (who[key] !== undefined) string(who[key], `who.${key}`);
      strings(who.channels, 'who.channels');
      strings(who.listeners, 'who.listeners');
      break;
    }
    case 'window-epoch':
      break;
    case 'window-took':
      strings(r.wids, 'wids');
      break;
    case 'window-handoff':
      arrayOf(r.parts, 'parts', (item, at) => {
        const p = objectOf(item, at);
        string(p.self, `${at}.self`);
        string(p.node, `${at}.node`);
        number(p.start, `${at}.start`);
        number(p.droppedMs, `${at}.droppedMs`);
        for (const [id, down] of Object.entries(objectOf(p.lives, `${at}.lives`))) if (down !== null) number(down, `${at}.lives.${id}`);
        // Each entry: `[ms, kind, keys, event, listening, last]`, last a frame (entries) or the peers (missed).
        const sendTuple = (entry: unknown, e: string, last: (value: unknown, at: string) => void): void => {
          if (!Array.isArray(entry) || entry.length !== 6) throw malformed(e);
          number(entry[0], `${e}[0]`);
          sendKind(entry[1], `${e}[1]`);
          strings(entry[2], `${e}[2]`);
          string(entry[3], `${e}[3]`);
          boolean(entry[4], `${e}[4]`);
          last(entry[5], `${e}[5]`);
        };
        arrayOf(p.entries, `${at}.entries`, (entry, e) => sendTuple(entry, e, string));
        if (p.missed !== undefined) arrayOf(p.missed, `${at}.missed`, (entry, e) => sendTuple(entry, e, strings));
      });
      break;
    case 'qos-copy':
      arrayOf(r.items, 'items', (item, at) => {
        const i = objectOf(item, at);
        messageId(i.id, `${at}.id`);
        oneOf(i.kind, `${at}.kind`, TARGET_KINDS);
        strings(i.keys, `${at}.keys`);
        fieldText(i.event, `${at}.event`);
        string(i.data, `${at}.data`);
        boolean(i.listening, `${at}.listening`);
        number(i.createdAt, `${at}.createdAt`);
        number(i.expiresAt, `${at}.expiresAt`);
      });
      break;
    case 'qos-copy-remove':
      arrayOf(r.items, 'items', (item, at) => {
        const i = objectOf(item, at);
        string(i.messageId, `${at}.messageId`);
        targetRefs(i.targets, `${at}.targets`);
      });
      strings(r.ids, 'ids');
      if (r.keep !== undefined) {
        const keep = objectOf(r.keep, 'keep');
        string(keep.connectionId, 'keep.connectionId');
        oneOf(keep.by, 'keep.by', ACKED_BY);
      }
      break;
    case 'qos-copy-acks':
      arrayOf(r.acks, 'acks', (item, at) => {
        const a = objectOf(item, at);
        string(a.messageId, `${at}.messageId`);
        oneOf(a.kind, `${at}.kind`, KEPT_KINDS);
        string(a.key, `${at}.key`);
        string(a.connectionId, `${at}.connectionId`);
        oneOf(a.by, `${at}.by`, ACKED_BY);
      });
      break;
    case 'qos-copy-held':
      strings(r.ids, 'ids');
      break;
    case 'qos-copy-acks-of':
      string(r.tag, 'tag');
      break;
    case 'qos-pull-me':
      if (r.tag !== undefined) string(r.tag, 'tag');
      break;
    default:
      throw malformed('type');
  }
  return r as unknown as ClusterRequest;
}

const SEND_KINDS: ReadonlySet<unknown> = new Set(['user', 'token', 'tenant', 'channel', 'all', 'connection']);
const TARGET_KINDS: ReadonlySet<unknown> = new Set(['user', 'token', 'tenant', 'channel', 'all']);
const CHANNEL_KINDS: ReadonlySet<unknown> = new Set(['connection', 'user', 'token']);
const KEPT_KINDS: ReadonlySet<unknown> = new Set(['user', 'token']);
const DISCONNECT_REASONS: ReadonlySet<unknown> = new Set(['kick', 'client', 'evicted']);
const ACKED_BY: ReadonlySet<unknown> = new Set(['ack', 'write']);

/** Each query's arguments, by position: `s` a string, `n` a string or null, `f` a connection filter. */
const QUERY_ARGS: ReadonlyMap<unknown, string> = new Map([
  ['userIds', ''],
  ['users', ''],
  ['accessTokens', ''],
  ['tenantIds', ''],
  ['channels', ''],
  ['connectionCount', ''],
  ['connectionIds', ''],
  ['isOnline', 's'],
  ['user', 's'],
  ['userIdsListening', 'sn'],
  ['connections', 'f'],
  ['connectionById', 's'],
  ['presence', 's'],
  ['channelsOf', 's'],
]);

function queryArgs(name: unknown, args: unknown): void {
  // A Map, not an object: `constructor` or `__proto__` is no query.
  const shape = QUERY_ARGS.get(name);
  if (shape === undefined) throw malformed('name');
  if (!Array.isArray(args) || args.length !== shape.length) throw malformed('args');
  [...shape].forEach((kind, i) => {
    const arg: unknown = args[i];
    if (kind === 's') string(arg, `args[${i}]`);
    else if (kind === 'n' && arg !== null) string(arg, `args[${i}]`);
    else if (kind === 'f') {
      const filter = objectOf(arg, `args[${i}]`);
      for (const key of FILTER_FIELDS) if (filter[key] !== undefined) string(filter[key], `args[${i}].${key}`);
    }
  });
}

/**
 * The fields of a `ConnectionFilter`, every one (a field added to it fails the type-check here):
 * the hub sends each as a string, and a value of another type would throw where it is looked up.
 */
const FILTER_FIELDS = Object.keys({
  userId: true,
  tenantId: true,
  accessToken: true,
  channel: true,
  clientId: true,
  listening: true,
} satisfies Record<keyof ConnectionFilter, true>);

function pendingRequest(r: Record<string, unknown>, at: string): void {
  targetRefs(r.refs, `${at}.refs`);
  targetRefs(r.logRefs, `${at}.logRefs`);
  if (r.lastEventId !== undefined) string(r.lastEventId, `${at}.lastEventId`);
  if (r.events !== undefined) strings(r.events, `${at}.events`);
  if (r.copiesOf !== undefined) string(r.copiesOf, `${at}.copiesOf`);
}

function targetRefs(value: unknown, at: string): void {
  arrayOf(value, at, (item, where) => {
    const ref = objectOf(item, where);
    oneOf(ref.kind, `${where}.kind`, TARGET_KINDS);
    string(ref.key, `${where}.key`);
  });
}

function objectOf(value: unknown, at: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed(at);
  return value as Record<string, unknown>;
}

function arrayOf(value: unknown, at: string, check: (item: unknown, at: string) => void): void {
  if (!Array.isArray(value)) throw malformed(at);
  value.forEach((item, i) => check(item, `${at}[${i}]`));
}

function strings(value: unknown, at: string): void {
  arrayOf(value, at, string);
}

function string(value: unknown, at: string): void {
  if (typeof value !== 'string') throw malformed(at);
}

/** An event name or id: a non-empty string (an id may be empty) that cannot break the SSE framing. */
function fieldText(value: unknown, at: string): void {
  if (typeof value !== 'string' || /[\r\n\0]/.test(value) || (value === '' && at.endsWith('.event'))) throw malformed(at);
}

/** A durable message's id: 26 lowercase hex digits (a copy keeps its owner's). */
function messageId(value: unknown, at: string): void {
  if (typeof value !== 'string' || !/^[0-9a-f]{26}$/.test(value)) throw malformed(at);
}

function number(value: unknown, at: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw malformed(at);
}

/** A count (a listing's limit): SQLite reads a negative limit as none, and refuses a fraction. */
function count(value: unknown, at: string): void {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw malformed(at);
}

function boolean(value: unknown, at: string): void {
  if (typeof value !== 'boolean') throw malformed(at);
}

function sendKind(value: unknown, at: string): void {
  oneOf(value, at, SEND_KINDS);
}

function oneOf(value: unknown, at: string, allowed: ReadonlySet<unknown>): void {
  if (!allowed.has(value)) throw malformed(at);
}

function malformed(at: string): SseBadRequestError {
  return new SseBadRequestError(`Malformed cluster request: ${at}`);
}
