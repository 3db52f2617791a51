import type { Context } from 'koa';
import { isChannelName } from '../core/channels.js';
import { SseBadRequestError, SseError, SseForbiddenError } from '../core/errors.js';
import { keyOf } from '../core/user.js';
import type { Hub } from '../hub.js';
import type { ApiKeyCall } from './call.js';
import { PUBLISH_TARGET_KINDS, type ApiKey, type PublishTargetKind } from './publish-keys.js';
import { sendJson } from './response.js';

/** One message of a publish request, checked. */
export interface PublishMessage {
  target: PublishTargetKind;
  /** User ids, tokens, tenant ids or channels; `['']` for `all`. */
  keys: string[];
  event: string;
  data: unknown;
  durable: boolean;
  listening: boolean;
  ttlMs?: number;
  idempotencyKey?: string;
}

/** What one published message did: the connections it reached, and a durable message's id. */
export interface PublishResult {
  delivered: number;
  messageId?: string;
  /** A durable message: the nodes that hold it committed (`QosSendResult.copies`). */
  copies?: number;
}

/** A message of a batch that failed on the server's side (the others were sent). */
export interface PublishFailure {
  /** Its stable code and message (e.g. `ERR_SSE_QUEUE_FULL`). */
  error: { code: string; message: string };
}

/** Most keys in one message. */
const MAX_KEYS = 10_000;
/** Most user ids in one online check: each is a query of the cluster (local first). */
const MAX_ONLINE = 100;
const EVENT = /^[^\r\n\0]{1,256}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
const FIELDS = new Set(['target', 'keys', 'event', 'data', 'durable', 'listening', 'ttlMs', 'idempotencyKey']);

/**
 * `POST {base}/publish` with one message: `{target, keys, event, data, durable, ttlMs,
 * idempotencyKey, listening}`. Answers `{delivered, messageId?}`. Sent through the same hub
 * calls as `ctx.sse` (`hub.send*`, `hub.qos.send*`): cluster-wide on either engine.
 */
export async function publishOne(call: ApiKeyCall): Promise<void> {
  const body = await call.json();
  const message = checkMessage(body, call.key, call.env.hub, '');
  await call.env.publish.take(call.key, 1);
  const result = await send(call.env.hub, message);
  sendJson(call.ctx, 200, result);
}

/**
 * `POST {base}/publish/batch` with `{messages: [...]}` (each as for `publish`), checked whole
 * before any is sent: one malformed (400) or out of the key's scope (403), a batch over
 * `maxBatch` (413) or over the key's rate (429) sends nothing. Sent in order. Answers
 * `{delivered, failed, results}`, a result per message: `{delivered, messageId?}`, or
 * `{error}` for one the server failed to send (e.g. a full durable queue; the others went).
 */
export async function publishBatch(call: ApiKeyCall): Promise<void> {
  const body = await call.json();
  const list = body.messages;
  if (!Array.isArray(list) || list.length === 0) throw new SseBadRequestError('messages must be a non-empty array');
  const max = call.env.publish.maxBatch;
  if (list.length > max) throw new SseError(`A batch holds at most ${max} messages, got ${list.length}`, 'ERR_SSE_PAYLOAD_TOO_LARGE', 413);
  const messages = list.map((m, i) => checkMessage(m, call.key, call.env.hub, `messages[${i}].`));
  await call.env.publish.take(call.key, messages.length);
  // Started in order without waiting: the hub writes and forwards them in that order.
  const settled = await Promise.allSettled(messages.map((m) => send(call.env.hub, m)));
  let delivered = 0;
  let failed = 0;
  const results = settled.map((s): PublishResult | PublishFailure => {
    if (s.status === 'fulfilled') {
      delivered += s.value.delivered;
      return s.value;
    }
    failed++;
    if (!(s.reason instanceof SseError && s.reason.status < 500)) call.env.hub.reportError(s.reason);
    return { error: failureOf(s.reason) };
  });
  sendJson(call.ctx, 200, { delivered, failed, results });
}

/** `GET {base}/publish/online?userId=7&userId=8`: `{online: {"7": true, "8": false}}`, cluster-wide. */
export async function online(call: ApiKeyCall): Promise<void> {
  const ids = listOf(call.ctx, 'userId');
  if (ids.length === 0 || ids.length > MAX_ONLINE) throw new SseBadRequestError(`userId is required (1 to ${MAX_ONLINE} of them)`);
  const answers = await Promise.all(ids.map((id) => call.env.hub.isOnline(id)));
  const result: Record<string, boolean> = {};
  ids.forEach((id, i) => (result[id] = answers[i]!));
  sendJson(call.ctx, 200, { online: result });
}

/** `GET {base}/publish/presence?channel=room:1&limit=100`: who is in a channel, cluster-wide (as `hub.presence`). */
export async function presence(call: ApiKeyCall): Promise<void> {
  const raw = call.ctx.query.channel;
  const channel = Array.isArray(raw) ? raw[0] : raw;
  if (!isChannelName(channel)) throw new SseBadRequestError('channel is required: 1-256 characters, no control characters');
  const [limitText] = listOf(call.ctx, 'limit');
  let limit: number | undefined;
  if (limitText !== undefined) {
    if (!/^\d{1,6}$/.test(limitText)) throw new SseBadRequestError('limit must be a whole number');
    limit = Number(limitText);
  }
  sendJson(call.ctx, 200, await call.env.hub.presence(channel, limit === undefined ? {} : { limit }));
}

/** Checks one message of a request and the key's scope over it; 400 or 403, before anything is sent. */
export function checkMessage(raw: unknown, key: ApiKey, hub: Hub, at: string): PublishMessage {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SseBadRequestError(`${at || 'the body'} must be a JSON object`);
  const m = raw as Record<string, unknown>;
  const unknown = Object.keys(m).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) throw new SseBadRequestError(`${at}${unknown.slice(0, 64)} is not a field of a publish message`);
  const target = m.target as PublishTargetKind;
  if (!PUBLISH_TARGET_KINDS.includes(target)) throw new SseBadRequestError(`${at}target must be one of ${PUBLISH_TARGET_KINDS.join(', ')}`);
  let keys: string[];
  if (target === 'all') {
    if (m.keys !== undefined && !(Array.isArray(m.keys) && m.keys.length === 0)) throw new SseBadRequestError(`${at}keys: target all takes none`);
    keys = [''];
  } else {
    if (!Array.isArray(m.keys) || m.keys.length === 0 || m.keys.length > MAX_KEYS) {
      throw new SseBadRequestError(`${at}keys must be an array of 1 to ${MAX_KEYS} ids`);
    }
    keys = m.keys.map((k) => {
      const s = typeof k === 'string' || typeof k === 'number' ? keyOf(k) : undefined;
      if (s === undefined || s.length > 256 || (target === 'channel' && !isChannelName(s))) {
        throw new SseBadRequestError(`${at}keys must hold non-empty strings or numbers (at most 256 characters)`);
      }
      return s;
    });
  }
  if (typeof m.event !== 'string' || !EVENT.test(m.event)) throw new SseBadRequestError(`${at}event must be 1-256 characters without CR, LF or NUL`);
  const durable = flag(m.durable, `${at}durable`);
  const listening = flag(m.listening, `${at}listening`);
  const message: PublishMessage = { target, keys, event: m.event, data: m.data ?? null, durable, listening };
  if (m.ttlMs !== undefined) {
    if (!durable) throw new SseBadRequestError(`${at}ttlMs is for durable messages`);
    if (typeof m.ttlMs !== 'number' || !Number.isSafeInteger(m.ttlMs) || m.ttlMs <= 0)
      throw new SseBadRequestError(`${at}ttlMs must be a positive whole number`);
    message.ttlMs = m.ttlMs;
  }
  if (m.idempotencyKey !== undefined) {
    if (!durable) throw new SseBadRequestError(`${at}idempotencyKey is for durable messages`);
    if (typeof m.idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(m.idempotencyKey)) {
      throw new SseBadRequestError(`${at}idempotencyKey must be 1-200 printable ASCII characters`);
    }
    message.idempotencyKey = m.idempotencyKey;
  }
  if (!key.scope.targets.includes(target)) throw new SseForbiddenError(`API key ${key.id} may not publish to target ${target}`);
  if (durable && !key.scope.durable) throw new SseForbiddenError(`API key ${key.id} may not publish durable messages`);
  if (durable && !hub.hasQos) throw new SseBadRequestError(`${at}durable: this system has no durable store (the qos option)`);
  return message;
}

/** The send of each target but `all`, by name: the hub and `hub.qos` name them alike. */
const SEND_BY = {
  user: 'sendByUserId',
  token: 'sendByAccessToken',
  tenant: 'sendByTenantId',
  channel: 'sendByChannel',
} as const satisfies Record<Exclude<PublishTargetKind, 'all'>, string>;

/** Sends one checked message through the hub, as `ctx.sse` would. */
export async function send(hub: Hub, m: PublishMessage): Promise<PublishResult> {
  if (m.durable) {
    // `idempotencyKey` goes to the store (QosSendOptions): a retry answers the first messageId, stored and delivered once.
    const options: { listening: boolean; ttlMs?: number; idempotencyKey?: string } = { listening: m.listening };
    if (m.ttlMs !== undefined) options.ttlMs = m.ttlMs;
    if (m.idempotencyKey !== undefined) options.idempotencyKey = m.idempotencyKey;
    const qos = hub.qos;
    const r = m.target === 'all' ? await qos.sendAll(m.event, m.data, options) : await qos[SEND_BY[m.target]](m.keys, m.event, m.data, options);
    return { delivered: r.delivered, messageId: r.messageId, copies: r.copies };
  }
  const options = { listening: m.listening };
  const delivered = m.target === 'all' ? await hub.sendAll(m.event, m.data, options) : await hub[SEND_BY[m.target]](m.keys, m.event, m.data, options);
  return { delivered };
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new SseBadRequestError(`${name} must be true or false`);
  return value;
}

function failureOf(err: unknown): { code: string; message: string } {
  if (err instanceof SseError && err.status < 500) return { code: err.code, message: err.message };
  if (err instanceof SseError) return { code: err.code, message: err.code === 'ERR_SSE_QUEUE_FULL' ? 'The durable queue is full' : 'Not sent' };
  return { code: 'ERR_SSE_INTERNAL', message: 'Not sent' };
}

/** A query parameter's values (repeated, or comma-separated), each at most 256 characters. */
function listOf(ctx: Context, name: string): string[] {
  const raw = ctx.query[name];
  const values = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).flatMap((v) => v.split(','));
  const out = values.filter((v) => v !== '');
  if (out.some((v) => v.length > 256)) throw new SseBadRequestError(`${name} is too long`);
  return out;
}
