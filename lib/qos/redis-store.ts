import { createHash } from 'node:crypto';
import { SseQueueFullError } from '../core/errors.js';
import { connectRedis, openRedis, redisFailure, type RedisClient } from '../redis/redis-connection.js';
import type { RedisSource } from '../redis/redis-source.js';
import type { NewMessage, QosStore, QueueCount, RemovedTarget, StoredEntry, StoreFilter, StoredMessage, TargetKind, TargetRef } from './qos-store.js';
import { QUEUE_KINDS } from './qos-store.js';
import { TickBatch, type Batched } from './tick-batch.js';

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

const SCRIPTS = {
  // KEYS[1] {p}:seq. ARGV: base, tag, maxTotal, maxPerTarget, then per message: kind, event,
  // data, listening, createdAt, expiresAt, isQueue, n, key1..keyn. Answers per message
  // {'ok', id} or {'full', key?}. Ids are minted here, from Redis's clock and the last id:
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
  local first = i + 8
  local final = i + 7 + tonumber(ARGV[i + 7])
  local full = nil
  local empty = {}
  if total >= maxTotal then
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
  // ARGV: base, offset, limit, ref... (every ref must be a target). Answers total, items.
  sseQosList: `${LIB}
local b = ARGV[1]
local offset = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local page = {}
local total = 0
if #ARGV == 3 then
  total = redis.call('ZCARD', b .. ':ids')
  page = redis.call('ZRANGEBYLEX', b .. ':ids', '-', '+', 'LIMIT', offset, limit)
else
  for _, id in ipairs(redis.call('ZRANGEBYLEX', b .. ':q:' .. ARGV[4], '-', '+')) do
    local all = true
    for r = 5, #ARGV do
      if redis.call('HEXISTS', b .. ':m:' .. id, 't:' .. ARGV[r]) == 0 then all = false; break end
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

/** Most calls in one script call, and most bytes of arguments (about): one call blocks Redis while it runs. */
const MAX_BATCH = 500;
const MAX_BATCH_BYTES = 1024 * 1024;

interface InsertItem {
  fresh: NewMessage;
  keys: string[];
}

type RemoveItem = { messageId: string; targets: TargetRef[] };

type Fields = [id: string, kind: string, event: string, data: string, listening: string, createdAt: string, expiresAt: string];
type EntryReply = [Fields, string[]];

/** The scripts as ioredis commands (`defineCommand`: EVALSHA, EVAL once after a Redis restart flushed them). */
type ScriptClient = {
  [K in keyof typeof SCRIPTS]: (key: string, ...args: (string | number)[]) => Promise<unknown>;
};

/** Options of {@link RedisQosStore}. */
export interface RedisQosStoreOptions {
  /** Key prefix; wrapped in `{}` (one Redis Cluster slot). */
  prefix: string;
  /** Longest a command may take (clients opened from a URL). */
  commandTimeoutMs: number;
  /** Caps, checked in Redis atomically with the insert: nodes sharing the store share them. */
  maxPendingPerTarget: number;
  maxMessages: number;
}

/**
 * The Redis store of durable delivery, shared by every node on the same Redis and prefix:
 * they all have the same tag (made from the prefix), so every message is "own" on every node,
 * any node drains a reconnecting user's queue and an ack through any node removes the entry.
 * A send is committed once Redis answered the insert script (how durable that is depends on
 * Redis persistence: docs/redis.md, "How durable is a committed send?"). The inserts (and the acks) of one tick go
 * to Redis as one script call ({@link TickBatch}): the group commit of this store.
 * Fail-fast: when Redis is away every call rejects with `ERR_SSE_REDIS_UNAVAILABLE` at once
 * (or after the command timeout when Redis stalls); the client reconnects by itself.
 */
export class RedisQosStore implements QosStore {
  readonly tag: string;
  readonly shared = true;
  readonly #client: RedisClient;
  readonly #scripts: ScriptClient;
  readonly #base: string;
  readonly #seqKey: string;
  readonly #options: RedisQosStoreOptions;
  /** The first connection, awaited by the calls made before it is ready (start-up); later a call made while Redis is down fails at once. */
  #first: Promise<void> | undefined;
  #closed = false;
  readonly #inserts = new TickBatch<InsertItem, StoredMessage>((batch) => this.#runInserts(batch), {
    maxItems: MAX_BATCH,
    maxBytes: MAX_BATCH_BYTES,
    sizeOf: (i) => i.fresh.data.length + i.fresh.event.length + i.keys.reduce((n, k) => n + k.length + 16, 0),
  });
  readonly #removes = new TickBatch<RemoveItem[], RemovedTarget[]>((batch) => this.#runRemoves(batch), {
    maxItems: MAX_BATCH,
    maxBytes: MAX_BATCH_BYTES,
    sizeOf: (items) => items.reduce((n, i) => n + i.messageId.length + i.targets.reduce((m, t) => m + t.key.length + 16, 0), 0),
  });

  constructor(source: RedisSource, options: RedisQosStoreOptions) {
    this.#options = options;
    this.#base = `{${options.prefix}}`;
    this.#seqKey = `${this.#base}:seq`;
    // One tag for every node of the store, derived from its prefix alone: it is known before Redis answers.
    this.tag = createHash('sha256').update(`koa-sse-server qos ${options.prefix}`).digest('hex').slice(0, 8);
    const client = openRedis(source, options.commandTimeoutMs);
    this.#client = client;
    // Connection errors reach the callers of each command as ERR_SSE_REDIS_UNAVAILABLE; without a listener ioredis would print each one.
    client.on('error', () => undefined);
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: 1, lua });
    this.#scripts = client as unknown as ScriptClient;
    this.#first = connectRedis(client, options.commandTimeoutMs).then(
      () => (this.#first = undefined),
      () => (this.#first = undefined),
    );
  }

  /** Calls the client when it is ready: Redis's own failures pass, connection failures become `ERR_SSE_REDIS_UNAVAILABLE`. */
  async #call<T>(what: string, script: keyof typeof SCRIPTS, args: (string | number)[]): Promise<T> {
    if (this.#closed) throw new Error('The durable queue is closed');
    if (this.#first !== undefined) await this.#first;
    try {
      return (await this.#scripts[script](this.#seqKey, this.#base, ...args)) as T;
    } catch (err) {
      throw redisFailure(err, what);
    }
  }

  onReady(listener: () => void): void {
    this.#client.on('ready', listener);
  }

  /**
   * Stores a message. The inserts of one tick go to Redis as one script call (group commit:
   * one round trip and one AOF write for all of them); each promise resolves with its own
   * answer once Redis has run the call.
   */
  insert(fresh: NewMessage, keys: string[]): Promise<StoredMessage> {
    if (this.#closed) return Promise.reject(new Error('The durable queue is closed'));
    return this.#inserts.add({ fresh, keys });
  }

  #runInserts(batch: Batched<InsertItem, StoredMessage>[]): void {
    const o = this.#options;
    const args: (string | number)[] = [this.tag, o.maxMessages, o.maxPendingPerTarget];
    for (const { item } of batch) {
      const { kind, event, data, listening, createdAt, expiresAt } = item.fresh;
      args.push(kind, event, data, listening ? '1' : '0', createdAt, expiresAt, QUEUE_KINDS.has(kind) ? '1' : '0', item.keys.length, ...item.keys);
    }
    this.#call<[string, string?][]>('Durable send', 'sseQosInsert', args).then(
      (replies) => {
        for (const [i, { item, resolve, reject }] of batch.entries()) {
          const [status, value] = replies[i]!;
          if (status === 'ok') resolve({ id: value!, ...item.fresh });
          else {
            reject(
              new SseQueueFullError(
                value === undefined
                  ? `The durable queue holds its maximum of ${o.maxMessages} messages`
                  : `${item.fresh.kind} ${value.slice(0, 64)} has ${o.maxPendingPerTarget} pending durable messages`,
              ),
            );
          }
        }
      },
      (err: unknown) => {
        for (const op of batch) op.reject(err);
      },
    );
  }

  /** Removes targets of messages (acks); the removals of one tick go as one script call. */
  remove(items: RemoveItem[]): Promise<RemovedTarget[]> {
    if (items.length === 0) return Promise.resolve([]);
    if (this.#closed) return Promise.reject(new Error('The durable queue is closed'));
    return this.#removes.add(items);
  }

  #runRemoves(batch: Batched<RemoveItem[], RemovedTarget[]>[]): void {
    const args: string[] = [];
    /** The index of each call's first message among the arguments. */
    const firsts: number[] = [];
    let n = 0;
    for (const { item } of batch) {
      firsts.push(n);
      n += item.length;
      for (const { messageId, targets } of item) args.push(messageId, String(targets.length), ...targets.map(refOf));
    }
    this.#call<(string | number)[]>('Durable ack', 'sseQosRemove', args).then(
      (flat) => {
        const results: RemovedTarget[][] = batch.map(() => []);
        let call = 0;
        for (let i = 0; i < flat.length; i += 4) {
          const index = Number(flat[i]);
          while (call + 1 < firsts.length && firsts[call + 1]! <= index) call++;
          results[call]!.push({ ...targetOf(String(flat[i + 1])), messageId: String(flat[i + 2]), last: flat[i + 3] === '1' });
        }
        for (const [i, op] of batch.entries()) op.resolve(results[i]!);
      },
      (err: unknown) => {
        for (const op of batch) op.reject(err);
      },
    );
  }

  async messagesFor(
    refs: TargetRef[],
    afterId: string,
    limit: number,
    now: number,
    events?: string[],
  ): Promise<{ messages: StoredMessage[]; mark: string }> {
    if (events !== undefined && events.length === 0) refs = [];
    const args: (string | number)[] = [
      this.tag,
      afterId,
      limit,
      now,
      refs.length,
      ...refs.map(refOf),
      events === undefined ? '0' : '1',
      ...(events ?? []),
    ];
    const [mark, rows] = await this.#call<[string, Fields[]]>('Durable replay', 'sseQosPage', args);
    return { messages: rows.map(messageOf), mark };
  }

  async get(id: string): Promise<StoredEntry | undefined> {
    const reply = await this.#call<EntryReply | null>('Durable status', 'sseQosGet', [id]);
    return reply === null ? undefined : entryOf(reply);
  }

  async delete(id: string): Promise<TargetRef[] | undefined> {
    const refs = await this.#call<string[] | null>('Durable cancel', 'sseQosDelete', [id]);
    return refs === null ? undefined : refs.map(targetOf);
  }

  async expire(now: number, limit: number): Promise<StoredEntry[]> {
    return (await this.#call<EntryReply[]>('Durable expiry', 'sseQosExpire', [now, limit])).map(entryOf);
  }

  async counts(): Promise<{ queues: QueueCount[]; total: number }> {
    const flat = await this.#call<(string | number)[]>('Durable counts', 'sseQosCounts', []);
    const queues: QueueCount[] = [];
    for (let i = 1; i < flat.length; i += 2) queues.push({ ...targetOf(String(flat[i])), n: Number(flat[i + 1]) });
    return { queues, total: Number(flat[0]) };
  }

  async list(filter: StoreFilter, offset: number, limit: number): Promise<{ total: number; items: StoredEntry[] }> {
    const refs: string[] = [];
    if (filter.userId !== undefined) refs.push(refOf({ kind: 'user', key: filter.userId }));
    if (filter.accessToken !== undefined) refs.push(refOf({ kind: 'token', key: filter.accessToken }));
    if (filter.tenantId !== undefined) refs.push(refOf({ kind: 'tenant', key: filter.tenantId }));
    if (filter.channel !== undefined) refs.push(refOf({ kind: 'channel', key: filter.channel }));
    const [total, items] = await this.#call<[number, EntryReply[]]>('Durable listing', 'sseQosList', [offset, limit, ...refs]);
    return { total, items: items.map(entryOf) };
  }

  /** Closes the connection this store opened (a client passed in is duplicated, never closed). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#inserts.flush();
    this.#removes.flush();
    this.#closed = true;
    try {
      // Waits for replies to what is in flight: accepted sends are answered before the socket closes.
      if (this.#client.status === 'ready') await this.#client.quit();
    } catch {
      // Redis is away: nothing left to wait for.
    }
    this.#client.disconnect();
  }
}

/** `kind:key` as the scripts store it (the kind has no colon: the first one separates). */
function refOf(t: TargetRef): string {
  return `${t.kind}:${t.key}`;
}

function targetOf(ref: string): TargetRef {
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

function entryOf([fields, refs]: EntryReply): StoredEntry {
  return { message: messageOf(fields), targets: refs.map(targetOf) };
}
