// The Redis engine's membership: a sorted set of node ids scored by each node's last beat, and
// a hash of their hellos, both on Redis's clock (the nodes' clocks may disagree). The nodes
// beat and drop the dead (redis-transport.ts); the emitter reads who is alive (redis-emitter.ts).

/** The keys of the membership of the nodes of `prefix`. */
export interface MembershipKeys {
  /** Node ids scored by their last beat (ms on Redis's clock). */
  nodes: string;
  /** Each node's hello (JSON) by node id. */
  hello: string;
}

/** One hash tag for both keys: a Redis Cluster keeps them in one slot, so that a script may touch both. */
export function membershipKeys(prefix: string): MembershipKeys {
  return { nodes: `{${prefix}}:nodes`, hello: `{${prefix}}:hello` };
}

/**
 * One beat, on Redis's clock (nodes' clocks may disagree; `replicate_commands` lets Redis 3.2-4
 * write after TIME, later versions always do): scores this node now, stores its
 * hello, answers the live node ids and the expired ones. KEYS: nodes, hello. ARGV: node id,
 * hello JSON, ttl in ms.
 */
export const BEAT = `
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = now - tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return { redis.call('ZRANGEBYSCORE', KEYS[1], dead, '+inf'), redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. dead) }
`;

/**
 * Removes the given nodes if they are still expired (one may have beaten since it was read):
 * from the set and the hellos. Answers those removed. KEYS: nodes, hello. ARGV: ttl, ids.
 */
export const COLLECT = `
redis.replicate_commands()
local t = redis.call('TIME')
local dead = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local removed = {}
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) < dead then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    removed[#removed + 1] = ARGV[i]
  end
end
return removed
`;

/** The live node ids, on Redis's clock (as the nodes' beat reads them). KEYS: nodes. ARGV: ttl in ms. */
export const LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
`;
