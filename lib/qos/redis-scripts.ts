import type { NewMessage, QueueCount, RemovedTarget, StoredEntry, StoreFilter, StoredMessage, TargetKind, TargetRef } from './qos-store.js';
import { QUEUE_KINDS } from './qos-store.js';

// The Lua side of the Redis store (redis-store.ts) and its argument protocol: each script's
// positional arguments are built by one encoder below and its reply read by one decoder, so
// the order of ARGV is written down in exactly two places: the script and its encoder.

// Data layout. Every key starts with `{prefix}` (a Redis Cluster hash tag: all keys of one
// store live in one slot, so every script below is atomic there too). Hashes and sorted
// sets rather than Streams: a queue needs removal of single entries in any order (an ack)
// and a lookup of one message by id (status, cancel), which a Stream does poorly (XDEL
// leaves tombstones; one Stream per target would copy each payload per target).
//
//   {p}:seq            hash  ms, seq      the last id minted (ids are minted in the insert script)
//   {p}:m:<id>         hash  k e d l c x  kind, event, data, listening, createdAt, expiresAt, and
//                            t:<kind>:<key> one field per target the message still has (acks
//                                         remove them; no target field left: the message is done)
//   {p}:q:<kind>:<key> zset  id (score 0) one per target: a queue (user, token) or a log
//                                         (all, tenant, channel), read in id order by ZRANGEBYLEX
//   {p}:exp            zset  id by expiresAt, for expiry; its size is the total of messages
//   {p}:ids            zset  id (score 0) every message in id order, for the admin listing
//   {p}:queues         set   kind:key     queue targets with pending entries, to rebuild counts
//
// Every change is one Lua script, so a message and its index entries never disagree, and
// the caps are checked atomically with the insert: nodes sharing the store share its caps.
// Writes per stored message to one target: HSET, three ZADD, and an SADD when its queue was
// empty (Redis CPU, not Node's, bounds the send rate: see scripts/bench/qos.ts --redis).
//
// Durability of a resolved send is Redis's persistence (docs/redis.md, "How durable is a committed send?"): AOF with
// `appendfsync everysec` loses up to ~1 s of sends on a Redis crash, `appendfsync always`
// none, RDB snapshots alone minutes, and a replica failover can lose writes the primary
// acknowledged (replication is async; WAIT would narrow that window, it is not used here).

/** Fields of a message hash that are not targets. */
const FIXED_FIELDS = 6;

/** Local functions of the scripts below. */
const LIB = `
local FIXED = ${FIXED_FIELDS}
-- A message as the scripts answer it, and its targets ('kind:key'), from its hash; nil if gone.
local function entry(b, id)
  local h = redis.call('HGETALL', b .. ':m:' .. id)
  if #h == 0 then return nil end
  local f = {}
  local refs = {}
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 2) == 't:' then refs[#refs + 1] = string.sub(h[i], 3) else f[h[i]] = h[i + 1] end
  end
  return {id, f.k, f.e, f.d, f.l, f.c, f.x}, refs
end
-- Takes a message off one target's zset; an emptied queue leaves the set of queues.
local function unindex(b, ref, id)
  local qk = b .. ':q:' .. ref
  redis.call('ZREM', qk, id)
  if redis.call('EXISTS', qk) == 0 then redis.call('SREM', b .. ':queues', ref) end
end
-- Removes a message and every index entry of it.
local function drop(b, id, refs)
  for _, ref in ipairs(refs) do unindex(b, ref, id) end
  redis.call('DEL', b .. ':m:' .. id)
  redis.call('ZREM', b .. ':exp', id)
  redis.call('ZREM', b .. ':ids', id)
end
local function lastId(b, tag)
  local s = redis.call('HMGET', b .. ':seq', 'ms', 'seq')
  if not s[1] then return '' end
  return string.format('%012x%06x', tonumber(s[1]), tonumber(s[2])) .. tag
end
`;

export const SCRIPTS = {
  // KEYS[1] {p}:seq. ARGV: base, tag, maxTotal, maxPerTarget, then per message: kind, event,
  // data, listening, createdAt, expiresAt, isQueue, idempotencyKey ('' for none), n,
  // key1..keyn. Answers per message {'ok', id}, {'dup', firstId} (a retry within the key's
  // time to live: stored once, the first send's id) or {'full', key?}. Ids are minted here, from Redis's clock and the last id:
  // they sort in commit order, whichever node sent them. One call stores a whole tick's sends.
  sseQosInsert: `
local b = ARGV[1]
local tag = ARGV[2]
local maxTotal = tonumber(ARGV[3])
local maxPer = tonumber(ARGV[4])
local total = redis.call('ZCARD', b .. ':exp')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = redis.call('HMGET', KEYS[1], 'ms', 'seq')
local ms = tonumber(last[1]) or 0
local seq = tonumber(last[2]) or 0
local minted = false
local out = {}
local i = 5
while i <= #ARGV do
  local kind = ARGV[i]
  local queue = ARGV[i + 6] == '1'
  local idem = ARGV[i + 7]
  local first = i + 9
  local final = i + 8 + tonumber(ARGV[i + 8])
  local full = nil
  local empty = {}
  local prior = nil
  if idem ~= '' then prior = redis.call('GET', b .. ':idem:' .. idem) end
  if prior then
    full = {'dup', prior}
  elseif total >= maxTotal then
    full = {'full'}
  elseif queue then
    for j = first, final do
      local n = redis.call('ZCARD', b .. ':q:' .. kind .. ':' .. ARGV[j])
      if n >= maxPer then
        full = {'full', ARGV[j]}
        break
      end
      empty[j] = n == 0
    end
  end
  if full then
    out[#out + 1] = full
  else
    if now > ms then
      ms = now
      seq = 0
    else
      seq = seq + 1
      if seq > 16777215 then ms = ms + 1; seq = 0 end
    end
    minted = true
    local id = string.format('%012x%06x', ms, seq) .. tag
    local mk = b .. ':m:' .. id
    local h = {'k', kind, 'e', ARGV[i + 1], 'd', ARGV[i + 2], 'l', ARGV[i + 3], 'c', ARGV[i + 4], 'x', ARGV[i + 5]}
    for j = first, final do
      local ref = kind .. ':' .. ARGV[j]
      h[#h + 1] = 't:' .. ref
      h[#h + 1] = '1'
      -- Bounded argument lists: a message to thousands of targets is written in parts.
      if #h >= 200 then
        redis.call('HSET', mk, unpack(h))
        h = {}
      end
      redis.call('ZADD', b .. ':q:' .. ref, 0, id)
      if empty[j] then redis.call('SADD', b .. ':queues', ref) end
    end
    if #h > 0 then redis.call('HSET', mk, unpack(h)) end
    redis.call('ZADD', b .. ':exp', ARGV[i + 5], id)
    redis.call('ZADD', b .. ':ids', 0, id)
    total = total + 1
    if idem ~= '' then redis.call('SET', b .. ':idem:' .. idem, id, 'PX', math.max(1, tonumber(ARGV[i + 5]) - now)) end
    out[#out + 1] = {'ok', id}
  end
  i = final + 1
end
if minted then redis.call('HSET', KEYS[1], 'ms', string.format('%d', ms), 'seq', seq) end
return out
`,
  // ARGV: base, then per message: id, n, ref1..refn. Answers flat quadruples: the message's
  // index among the arguments (from 0), ref, id, last ('1': no target left, the message is gone).
  sseQosRemove: `${LIB}
local b = ARGV[1]
local out = {}
local i = 2
local item = 0
while i <= #ARGV do
  local id = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local mk = b .. ':m:' .. id
  local any = false
  for j = i + 2, i + 1 + n do
    local ref = ARGV[j]
    if redis.call('HDEL', mk, 't:' .. ref) == 1 then
      unindex(b, ref, id)
      out[#out + 1] = item
      out[#out + 1] = ref
      out[#out + 1] = id
      out[#out + 1] = '0'
      any = true
    end
  end
  if any and redis.call('HLEN', mk) <= FIXED then
    drop(b, id, {})
    out[#out] = '1'
  end
  i = i + 2 + n
  item = item + 1
end
return out
`,
  // ARGV: base, tag, after, limit, now, nrefs, ref..., filter ('1' or '0'), event...
  // The first \`limit\` ids of the union of each target's first \`limit\` are the union's first
  // \`limit\`: the page is exact. Expired and (with a filter) unlistened ones are skipped here,
  // so that a page is short only when nothing is left.
  sseQosPage: `${LIB}
local b = ARGV[1]
local cursor = ARGV[3]
local limit = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local nrefs = tonumber(ARGV[6])
local filter = ARGV[7 + nrefs] == '1'
local events = {}
for i = 8 + nrefs, #ARGV do events[ARGV[i]] = true end
local mark = lastId(b, ARGV[2])
local out = {}
while nrefs > 0 do
  local seen = {}
  local cand = {}
  local min = '-'
  if cursor ~= '' then min = '(' .. cursor end
  for r = 7, 6 + nrefs do
    local ids = redis.call('ZRANGEBYLEX', b .. ':q:' .. ARGV[r], min, '+', 'LIMIT', 0, limit)
    for _, id in ipairs(ids) do
      if not seen[id] then
        seen[id] = true
        cand[#cand + 1] = id
      end
    end
  end
  table.sort(cand)
  local n = math.min(#cand, limit)
  for i = 1, n do
    local id = cand[i]
    local m = redis.call('HMGET', b .. ':m:' .. id, 'k', 'e', 'd', 'l', 'c', 'x')
    if m[1] and tonumber(m[6]) > now and ((not filter) or (m[4] == '1' and events[m[2]])) then
      out[#out + 1] = {id, m[1], m[2], m[3], m[4], m[5], m[6]}
      if #out >= limit then return {mark, out} end
    end
  end
  if n < limit then break end
  cursor = cand[n]
end
return {mark, out}
`,
  // ARGV: base, id. Answers {fields, refs} or nil.
  sseQosGet: `${LIB}
local f, refs = entry(ARGV[1], ARGV[2])
if not f then return false end
return {f, refs}
`,
  // ARGV: base, id. Answers the refs it had, or nil.
  sseQosDelete: `${LIB}
local f, refs = entry(ARGV[1], ARGV[2])
if not f then return false end
drop(ARGV[1], ARGV[2], refs)
return refs
`,
  // ARGV: base, now, limit. Atomic: a message expired by one node is gone for the others.
  sseQosExpire: `${LIB}
local b = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', b .. ':exp', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local f, refs = entry(b, id)
  if f then
    drop(b, id, refs)
    out[#out + 1] = {f, refs}
  else
    redis.call('ZREM', b .. ':exp', id)
  end
end
return out
`,
  // ARGV: base. Answers total, then ref, n pairs.
  sseQosCounts: `
local b = ARGV[1]
local out = {redis.call('ZCARD', b .. ':exp')}
for _, ref in ipairs(redis.call('SMEMBERS', b .. ':queues')) do
  out[#out + 1] = ref
  out[#out + 1] = redis.call('ZCARD', b .. ':q:' .. ref)
end
return out
`,
  // ARGV: base, offset, limit, nrefs, ref... (every ref must be a target), event... (listening
  // mode for one of them; none: any message). Answers total, items. A filter without a target
  // reads every id of the store (an admin listing, not a hot path).
  sseQosList: `${LIB}
local b = ARGV[1]
local offset = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local nrefs = tonumber(ARGV[4])
local events = nil
if #ARGV > 4 + nrefs then
  events = {}
  for i = 5 + nrefs, #ARGV do events[ARGV[i]] = true end
end
local page = {}
local total = 0
if nrefs == 0 and not events then
  total = redis.call('ZCARD', b .. ':ids')
  page = redis.call('ZRANGEBYLEX', b .. ':ids', '-', '+', 'LIMIT', offset, limit)
else
  local ids
  if nrefs == 0 then ids = redis.call('ZRANGEBYLEX', b .. ':ids', '-', '+') else ids = redis.call('ZRANGEBYLEX', b .. ':q:' .. ARGV[5], '-', '+') end
  for _, id in ipairs(ids) do
    local all = true
    for r = 6, 4 + nrefs do
      if redis.call('HEXISTS', b .. ':m:' .. id, 't:' .. ARGV[r]) == 0 then all = false; break end
    end
    if all and events then
      local m = redis.call('HMGET', b .. ':m:' .. id, 'l', 'e')
      all = m[1] == '1' and events[m[2]] == true
    end
    if all then
      total = total + 1
      if total > offset and #page < limit then page[#page + 1] = id end
    end
  end
end
local items = {}
for _, id in ipairs(page) do
  local f, refs = entry(b, id)
  if f then items[#items + 1] = {f, refs} end
end
return {total, items}
`,
} as const;

/** The scripts as ioredis commands (`defineCommand`: EVALSHA, EVAL once after a Redis restart flushed them). */
export type ScriptClient = {
  [K in keyof typeof SCRIPTS]: (key: string, ...args: (string | number)[]) => Promise<unknown>;
};

/** One message to insert and its target keys. */
export interface InsertItem {
  fresh: NewMessage;
  keys: string[];
  /** A retry with this key within the message's time to live is stored once (see `QosSendOptions.idempotencyKey`). */
  idempotencyKey?: string;
}

/** Acks of one message for some of its targets. */
export type RemoveItem = { messageId: string; targets: TargetRef[] };

type Fields = [id: string, kind: string, event: string, data: string, listening: string, createdAt: string, expiresAt: string];
/** A message and its targets as `entry()` answers them. */
export type EntryReply = [Fields, string[]];
/** Per insert: `['ok', id]`, `['dup', firstId]` (an idempotent retry), or `['full']` (the store's total) / `['full', key]` (that target's queue). */
export type InsertReply = [status: string, value?: string][];

/** ARGV of `sseQosInsert` after the base: tag, caps, then each message and its keys. */
export function insertArgs(tag: string, maxMessages: number, maxPendingPerTarget: number, items: readonly InsertItem[]): (string | number)[] {
  const args: (string | number)[] = [tag, maxMessages, maxPendingPerTarget];
  for (const item of items) {
    const { kind, event, data, listening, createdAt, expiresAt } = item.fresh;
    const queue = QUEUE_KINDS.has(kind) ? '1' : '0';
    args.push(kind, event, data, listening ? '1' : '0', createdAt, expiresAt, queue, item.idempotencyKey ?? '', item.keys.length, ...item.keys);
  }
  return args;
}

/**
 * ARGV of `sseQosRemove` after the base, for the removals of several calls; `firsts`: the
 * index of each call's first message among the arguments (to give each call its answers).
 */
export function removeArgs(calls: readonly (readonly RemoveItem[])[]): { args: string[]; firsts: number[] } {
  const args: string[] = [];
  const firsts: number[] = [];
  let n = 0;
  for (const items of calls) {
    firsts.push(n);
    n += items.length;
    for (const { messageId, targets } of items) args.push(messageId, String(targets.length), ...targets.map(refOf));
  }
  return { args, firsts };
}

/** The reply of `sseQosRemove`, split back into one list per call of {@link removeArgs}. */
export function removedOf(flat: (string | number)[], firsts: readonly number[]): RemovedTarget[][] {
  const results: RemovedTarget[][] = firsts.map(() => []);
  let call = 0;
  for (let i = 0; i < flat.length; i += 4) {
    const index = Number(flat[i]);
    while (call + 1 < firsts.length && firsts[call + 1]! <= index) call++;
    results[call]!.push({ ...targetOf(String(flat[i + 1])), messageId: String(flat[i + 2]), last: flat[i + 3] === '1' });
  }
  return results;
}

/** ARGV of `sseQosPage` after the base. */
export function pageArgs(tag: string, refs: TargetRef[], afterId: string, limit: number, now: number, events?: string[]): (string | number)[] {
  if (events !== undefined && events.length === 0) refs = [];
  return [tag, afterId, limit, now, refs.length, ...refs.map(refOf), events === undefined ? '0' : '1', ...(events ?? [])];
}

/** The reply of `sseQosPage`. */
export function pageOf([mark, rows]: [string, Fields[]]): { messages: StoredMessage[]; mark: string } {
  return { messages: rows.map(messageOf), mark };
}

/** The reply of `sseQosCounts`. */
export function countsOf(flat: (string | number)[]): { queues: QueueCount[]; total: number } {
  const queues: QueueCount[] = [];
  for (let i = 1; i < flat.length; i += 2) queues.push({ ...targetOf(String(flat[i])), n: Number(flat[i + 1]) });
  return { queues, total: Number(flat[0]) };
}

/** ARGV of `sseQosList` after the base: the page, the targets a message must all have, the listened events it must be for. */
export function listArgs(filter: StoreFilter, offset: number, limit: number): (string | number)[] {
  const refs: string[] = [];
  if (filter.userId !== undefined) refs.push(refOf({ kind: 'user', key: filter.userId }));
  if (filter.accessToken !== undefined) refs.push(refOf({ kind: 'token', key: filter.accessToken }));
  if (filter.tenantId !== undefined) refs.push(refOf({ kind: 'tenant', key: filter.tenantId }));
  if (filter.channel !== undefined) refs.push(refOf({ kind: 'channel', key: filter.channel }));
  // An empty list of events matches nothing: a name no message has stands for it.
  const events = filter.listeners === undefined ? [] : filter.listeners.length === 0 ? [''] : filter.listeners;
  return [offset, limit, refs.length, ...refs, ...events];
}

/** `kind:key` as the scripts store it (the kind has no colon: the first one separates). */
function refOf(t: TargetRef): string {
  return `${t.kind}:${t.key}`;
}

export function targetOf(ref: string): TargetRef {
  const i = ref.indexOf(':');
  return { kind: ref.slice(0, i) as TargetKind, key: ref.slice(i + 1) };
}

function messageOf(f: Fields): StoredMessage {
  return {
    id: f[0],
    kind: f[1] as TargetKind,
    event: f[2],
    data: f[3],
    listening: f[4] === '1',
    createdAt: Number(f[5]),
    expiresAt: Number(f[6]),
  };
}

export function entryOf([fields, refs]: EntryReply): StoredEntry {
  return { message: messageOf(fields), targets: refs.map(targetOf) };
}
