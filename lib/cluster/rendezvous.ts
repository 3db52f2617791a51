import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest-random-weight) hashing: `nodes` ranked for `key`, best first. Every
 * node that sees the same members ranks them the same, and a member's arrival or departure
 * moves only the keys it ranks first (the replica of a durable message's target: every node
 * agrees on it without asking, and one target's messages keep going to one replica).
 */
export function rendezvous<T extends { nodeId: string }>(key: string, nodes: readonly T[]): T[] {
  return nodes
    .map((node) => ({ node, weight: createHash('sha1').update(node.nodeId).update('\0').update(key).digest().readUInt32BE(0) }))
    .sort((a, b) => b.weight - a.weight || (a.node.nodeId < b.node.nodeId ? -1 : 1))
    .map((w) => w.node);
}
