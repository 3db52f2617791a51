import type { DurableMessage } from '../qos/qos-cluster.js';

/** The owner of a durable message: the store tag that ends its id (8 characters). */
export const tagOf = (id: string): string => id.slice(-8);

const byId = (x: DurableMessage, y: DurableMessage): number => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);

/**
 * Lists of pulled messages regrouped by owner (the tag ending their ids): an absent owner's
 * messages may come from several holders of copies. Each message once; each owner's oldest
 * first, so that the connection gets them in the owner's order.
 */
export function byOwner(lists: DurableMessage[][]): DurableMessage[][] {
  if (lists.length <= 1) return lists;
  const seen = new Set<string>();
  const owners = new Map<string, DurableMessage[]>();
  let mixed = false;
  for (const list of lists) {
    const tags = new Set<string>();
    for (const m of list) {
      if (seen.has(m.id)) {
        mixed = true;
        continue;
      }
      seen.add(m.id);
      const tag = tagOf(m.id);
      if (!tags.has(tag) && owners.has(tag)) mixed = true;
      tags.add(tag);
      let own = owners.get(tag);
      if (own === undefined) owners.set(tag, (own = []));
      own.push(m);
    }
  }
  if (!mixed) return lists;
  return [...owners.values()].map((list) => list.sort(byId));
}
