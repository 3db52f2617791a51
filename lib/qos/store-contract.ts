import assert from 'node:assert/strict';
import type { NewMessage, QosStore, StoredMessage, TargetKind, TargetRef } from './qos-store.js';

/** The caps a store is made with for {@link storeContract}: a shared store checks them itself. */
export interface StoreContractCaps {
  maxPendingPerTarget: number;
  maxMessages: number;
}

/** Makes a fresh, empty store for one case (its own file, key prefix, schema or table names). */
export type MakeStore = (caps: StoreContractCaps) => QosStore | Promise<QosStore>;

/** One case of the contract: a name, and a function that makes a store, checks it, and closes it (rejects on a failure). */
export interface StoreContractCase {
  name: string;
  /** Only for a store shared by several processes (`shared: true`), which checks the caps itself: leave it out for a store of one process. */
  sharedOnly: boolean;
  run: () => Promise<void>;
}

/** The caps every case makes its store with (generous), and those of the caps case. */
const ROOMY: StoreContractCaps = { maxPendingPerTarget: 10_000, maxMessages: 100_000 };
const TIGHT: StoreContractCaps = { maxPendingPerTarget: 3, maxMessages: 5 };

const ID = /^[0-9a-f]{26}$/;
const HOUR = 3_600_000;

/**
 * The behaviour durable delivery relies on from a {@link QosStore}, as test cases that need
 * no test framework (they throw `node:assert` errors): register each with yours.
 *
 * ```ts
 * import { test } from 'node:test'; // or vitest, jest, mocha: `it(c.name, c.run)`
 * import { storeContract } from 'koa-sse-server/testing';
 * let n = 0;
 * for (const c of storeContract((caps) => MyStore.open({ ...caps, table: `t${n++}` }))) test(c.name, c.run);
 * ```
 *
 * `makeStore` is called once per case and must answer a fresh, empty store; each case closes
 * it. A shared store (`shared: true`) must check the caps it is given itself and pass the
 * cases marked `sharedOnly`; a store of one process leaves those out (durable delivery counts
 * for it). SQLite, Redis and the PostgreSQL
 * example pass it (test/store-contract.test.ts).
 */
export function storeContract(makeStore: MakeStore): StoreContractCase[] {
  const withStore =
    (check: (store: QosStore) => Promise<void>, caps: StoreContractCaps = ROOMY): (() => Promise<void>) =>
    async () => {
      const store = await makeStore(caps);
      try {
        await check(store);
      } finally {
        await store.close();
      }
    };
  return CASES.map(([name, check]) => {
    const sharedOnly = name.startsWith('caps');
    return { name: `store contract: ${name}`, sharedOnly, run: withStore(check, sharedOnly ? TIGHT : ROOMY) };
  });
}

/**
 * Runs every case of {@link storeContract} that applies to the store one after the other (the
 * `sharedOnly` cases when a first store made says `shared: true`); rejects with the first
 * failure, its message prefixed with the case's name.
 */
export async function runStoreContract(makeStore: MakeStore): Promise<void> {
  const probe = await makeStore(ROOMY);
  const shared = probe.shared;
  await probe.close();
  for (const c of storeContract(makeStore)) {
    if (c.sharedOnly && !shared) continue;
    try {
      await c.run();
    } catch (err) {
      if (err instanceof Error) err.message = `${c.name}: ${err.message}`;
      throw err;
    }
  }
}

function fresh(kind: TargetKind, overrides: Partial<NewMessage> = {}): NewMessage {
  const now = Date.now();
  return { kind, event: 'bell', data: '{"n":1}', listening: false, createdAt: now, expiresAt: now + HOUR, ...overrides };
}

const ids = (messages: readonly StoredMessage[]): string[] => messages.map((m) => m.id);
const sortRefs = (refs: readonly TargetRef[]): TargetRef[] =>
  [...refs].map((r) => ({ kind: r.kind, key: r.key })).sort((a, b) => `${a.kind}:${a.key}`.localeCompare(`${b.kind}:${b.key}`));

type Check = (store: QosStore) => Promise<void>;

const CASES: [string, Check][] = [
  [
    'its tag is 8 hex digits and ends every id; insert answers the message as given, with its id',
    async (store) => {
      assert.match(store.tag, /^[0-9a-f]{8}$/);
      assert.equal(typeof store.shared, 'boolean');
      const given = fresh('user', { event: 'é 🐱', data: 'plain text, not JSON: "quoted" \\ and\nnewline', listening: true });
      const stored = await store.insert(given, ['7']);
      assert.match(stored.id, ID);
      assert.ok(stored.id.endsWith(store.tag), 'the id ends with the tag');
      assert.deepEqual({ ...stored, id: undefined }, { ...given, id: undefined });
      const got = await store.get(stored.id);
      assert.deepEqual(got?.message, stored);
      assert.deepEqual(got?.targets, [{ kind: 'user', key: '7' }]);
      assert.equal(await store.get('0'.repeat(18) + store.tag), undefined, 'an unknown id');
    },
  ],
  [
    'ids sort in the order the sends were committed (a resume point), also for sends made in one tick',
    async (store) => {
      const sequential: string[] = [];
      for (let i = 0; i < 5; i++) sequential.push((await store.insert(fresh('user'), ['1'])).id);
      assert.deepEqual([...sequential].sort(), sequential);
      const together = await Promise.all(Array.from({ length: 20 }, () => store.insert(fresh('user'), ['1'])));
      assert.equal(new Set(ids(together)).size, 20, 'unique');
      assert.ok(
        together.every((m) => m.id > sequential.at(-1)!),
        'after those committed before',
      );
      const { messages } = await store.messagesFor([{ kind: 'user', key: '1' }], '', 100, Date.now());
      assert.deepEqual(ids(messages), [...sequential, ...ids(together)].sort());
    },
  ],
  [
    'messagesFor: the targets’ messages after a cursor, oldest first, each once, at most limit, not expired',
    async (store) => {
      const now = Date.now();
      const a = await store.insert(fresh('user'), ['1', '2']);
      const b = await store.insert(fresh('token'), ['tok']);
      await store.insert(fresh('user'), ['3']);
      const old = await store.insert(fresh('user', { expiresAt: now - 1 }), ['1']);
      const c = await store.insert(fresh('user'), ['1']);
      const refs: TargetRef[] = [
        { kind: 'user', key: '1' },
        { kind: 'user', key: '2' },
        { kind: 'token', key: 'tok' },
      ];
      const all = await store.messagesFor(refs, '', 100, now);
      assert.deepEqual(ids(all.messages), [a.id, b.id, c.id], 'a message for two of the targets comes once; an expired one not at all');
      assert.ok(!ids(all.messages).includes(old.id));
      assert.deepEqual(ids((await store.messagesFor(refs, '', 2, now)).messages), [a.id, b.id], 'limit');
      assert.deepEqual(ids((await store.messagesFor(refs, a.id, 100, now)).messages), [b.id, c.id], 'after the cursor');
      assert.deepEqual((await store.messagesFor([], '', 100, now)).messages, [], 'no target, no message');
      assert.deepEqual((await store.messagesFor([{ kind: 'user', key: 'nobody' }], '', 100, now)).messages, []);
      assert.deepEqual((await store.messagesFor(refs, c.id, 100, now)).messages, [], 'nothing after the last');
    },
  ],
  [
    'messagesFor pages through more than one page exactly',
    async (store) => {
      const sent: string[] = [];
      for (let i = 0; i < 25; i++) sent.push((await store.insert(fresh(i % 2 === 0 ? 'user' : 'token'), [i % 2 === 0 ? '1' : 't'])).id);
      const refs: TargetRef[] = [
        { kind: 'user', key: '1' },
        { kind: 'token', key: 't' },
      ];
      const read: string[] = [];
      let cursor = '';
      for (;;) {
        const page = (await store.messagesFor(refs, cursor, 7, Date.now())).messages;
        read.push(...ids(page));
        if (page.length < 7) break;
        cursor = page.at(-1)!.id;
      }
      assert.deepEqual(read, sent);
    },
  ],
  [
    'messagesFor with events: only listening-mode messages of those events',
    async (store) => {
      const listened = await store.insert(fresh('user', { event: 'a', listening: true }), ['1']);
      await store.insert(fresh('user', { event: 'b', listening: true }), ['1']);
      await store.insert(fresh('user', { event: 'a', listening: false }), ['1']);
      const refs: TargetRef[] = [{ kind: 'user', key: '1' }];
      assert.deepEqual(ids((await store.messagesFor(refs, '', 100, Date.now(), ['a'])).messages), [listened.id]);
      assert.deepEqual((await store.messagesFor(refs, '', 100, Date.now(), [])).messages, []);
      assert.equal((await store.messagesFor(refs, '', 100, Date.now())).messages.length, 3, 'without events: all');
    },
  ],
  [
    'messagesFor’s mark vouches for every message committed before the read',
    async (store) => {
      const empty = await store.messagesFor([{ kind: 'user', key: '1' }], '', 100, Date.now());
      assert.equal(typeof empty.mark, 'string');
      const first = await store.insert(fresh('user'), ['1']);
      // A message for another target counts too: the mark is the store's, not the targets'.
      const other = await store.insert(fresh('user'), ['2']);
      const { mark } = await store.messagesFor([{ kind: 'user', key: '1' }], '', 100, Date.now());
      assert.ok(mark >= first.id && mark >= other.id, `mark ${mark} covers ${other.id}`);
      const later = await store.insert(fresh('user'), ['1']);
      assert.ok(later.id > mark, 'a later send sorts after the mark');
    },
  ],
  [
    'retained logs (tenant, channel, all) are read by their keys after a resume point',
    async (store) => {
      const t1 = await store.insert(fresh('tenant'), ['t1']);
      const ch = await store.insert(fresh('channel'), ['room:1', 'room:2']);
      const all = await store.insert(fresh('all'), ['']);
      await store.insert(fresh('tenant'), ['t2']);
      const refs: TargetRef[] = [
        { kind: 'tenant', key: 't1' },
        { kind: 'channel', key: 'room:2' },
        { kind: 'all', key: '' },
      ];
      assert.deepEqual(ids((await store.messagesFor(refs, '', 100, Date.now())).messages), [t1.id, ch.id, all.id]);
      assert.deepEqual(ids((await store.messagesFor(refs, t1.id, 100, Date.now())).messages), [ch.id, all.id]);
    },
  ],
  [
    'remove: answers the target rows that existed, last when the message has none left (then it is gone)',
    async (store) => {
      const m = await store.insert(fresh('user'), ['1', '2']);
      const first = await store.remove([{ messageId: m.id, targets: [{ kind: 'user', key: '1' }] }]);
      assert.deepEqual(first, [{ kind: 'user', key: '1', messageId: m.id, last: false }]);
      assert.deepEqual((await store.get(m.id))?.targets, [{ kind: 'user', key: '2' }]);
      assert.deepEqual(await store.remove([{ messageId: m.id, targets: [{ kind: 'user', key: '1' }] }]), [], 'again: nothing');
      const second = await store.remove([
        {
          messageId: m.id,
          targets: [
            { kind: 'user', key: '2' },
            { kind: 'user', key: 'never-a-target' },
          ],
        },
        { messageId: '0'.repeat(18) + store.tag, targets: [{ kind: 'user', key: '2' }] },
      ]);
      assert.deepEqual(second, [{ kind: 'user', key: '2', messageId: m.id, last: true }]);
      assert.equal(await store.get(m.id), undefined);
      assert.deepEqual((await store.messagesFor([{ kind: 'user', key: '2' }], '', 100, Date.now())).messages, []);
    },
  ],
  [
    'remove of two targets of one message in one call: the second is last',
    async (store) => {
      const m = await store.insert(fresh('token'), ['a', 'b']);
      const removed = await store.remove([
        {
          messageId: m.id,
          targets: [
            { kind: 'token', key: 'a' },
            { kind: 'token', key: 'b' },
          ],
        },
      ]);
      assert.deepEqual(removed.map((r) => [r.key, r.last]).sort(), [
        ['a', false],
        ['b', true],
      ]);
    },
  ],
  [
    'concurrent removes of a message’s last targets: exactly one of them is last, and the message is gone',
    async (store) => {
      for (let round = 0; round < 10; round++) {
        const m = await store.insert(fresh('user'), ['a', 'b', 'c']);
        const removed = (
          await Promise.all(['a', 'b', 'c'].map((key) => store.remove([{ messageId: m.id, targets: [{ kind: 'user', key } as TargetRef] }])))
        ).flat();
        assert.equal(removed.length, 3);
        assert.equal(removed.filter((r) => r.last).length, 1, 'one last');
        assert.equal(await store.get(m.id), undefined);
      }
    },
  ],
  [
    'delete: answers the targets it had, then the message is gone everywhere',
    async (store) => {
      const m = await store.insert(fresh('channel'), ['x', 'y']);
      assert.deepEqual(sortRefs((await store.delete(m.id)) ?? []), [
        { kind: 'channel', key: 'x' },
        { kind: 'channel', key: 'y' },
      ]);
      assert.equal(await store.delete(m.id), undefined);
      assert.equal(await store.get(m.id), undefined);
      assert.deepEqual((await store.messagesFor([{ kind: 'channel', key: 'x' }], '', 100, Date.now())).messages, []);
      assert.equal((await store.counts()).total, 0);
    },
  ],
  [
    'expire: removes messages whose time is up, at most limit, with the targets they still had; each once',
    async (store) => {
      const now = Date.now();
      const gone: string[] = [];
      for (let i = 0; i < 6; i++) gone.push((await store.insert(fresh('user', { expiresAt: now - 1000 + i }), ['1', '2'])).id);
      const kept = await store.insert(fresh('user', { expiresAt: now + HOUR }), ['1']);
      await store.remove([{ messageId: gone[0]!, targets: [{ kind: 'user', key: '1' }] }]);
      const first = await store.expire(now, 4);
      assert.equal(first.length, 4);
      const entry = first.find((e) => e.message.id === gone[0]);
      if (entry !== undefined) assert.deepEqual(entry.targets, [{ kind: 'user', key: '2' }], 'the targets still pending');
      // Two callers at once (two nodes of a shared store): each message to one of them only.
      const [x, y] = await Promise.all([store.expire(now, 10), store.expire(now, 10)]);
      const answered = [...first, ...x, ...y].map((e) => e.message.id).sort();
      assert.deepEqual(answered, [...gone].sort(), 'every expired message exactly once');
      assert.deepEqual(await store.expire(now, 10), []);
      assert.deepEqual((await store.get(kept.id))?.message, kept);
      assert.equal((await store.counts()).total, 1);
    },
  ],
  [
    'counts: pending queue entries per user and token, and the messages stored in total',
    async (store) => {
      await store.insert(fresh('user'), ['1', '2']);
      const m = await store.insert(fresh('user'), ['1']);
      await store.insert(fresh('token'), ['t']);
      await store.insert(fresh('tenant'), ['t1']);
      await store.remove([{ messageId: m.id, targets: [{ kind: 'user', key: '1' }] }]);
      const { queues, total } = await store.counts();
      assert.equal(total, 3);
      const byKey = Object.fromEntries(queues.map((q) => [`${q.kind}:${q.key}`, Number(q.n)]));
      assert.deepEqual(byKey, { 'user:1': 1, 'user:2': 1, 'token:t': 1 }, 'queues only (tenants are logs), none at 0');
    },
  ],
  [
    'list: a page of stored messages, oldest first, filtered by every given target, with the total',
    async (store) => {
      const a = await store.insert(fresh('user'), ['1']);
      const b = await store.insert(fresh('tenant'), ['t1']);
      const c = await store.insert(fresh('user'), ['1', '2']);
      const d = await store.insert(fresh('channel'), ['room']);
      const everything = await store.list({}, 0, 100);
      assert.equal(everything.total, 4);
      assert.deepEqual(
        everything.items.map((e) => e.message.id),
        [a.id, b.id, c.id, d.id],
      );
      assert.deepEqual(sortRefs(everything.items[2]!.targets), [
        { kind: 'user', key: '1' },
        { kind: 'user', key: '2' },
      ]);
      const page = await store.list({}, 1, 2);
      assert.equal(page.total, 4);
      assert.deepEqual(
        page.items.map((e) => e.message.id),
        [b.id, c.id],
      );
      const user1 = await store.list({ userId: '1' }, 0, 100);
      assert.deepEqual([user1.total, user1.items.map((e) => e.message.id)], [2, [a.id, c.id]]);
      assert.equal((await store.list({ userId: '1', tenantId: 't1' }, 0, 100)).total, 0, 'every given field must match');
      assert.equal((await store.list({ tenantId: 't1' }, 0, 100)).total, 1);
      assert.equal((await store.list({ channel: 'room' }, 0, 100)).total, 1);
      assert.equal((await store.list({ accessToken: 'none' }, 0, 100)).total, 0);
    },
  ],
  [
    'list with listeners: only listening-mode messages for one of those events, with the other filters',
    async (store) => {
      const a = await store.insert(fresh('user', { event: 'a', listening: true }), ['1']);
      await store.insert(fresh('user', { event: 'a', listening: false }), ['1']);
      const b = await store.insert(fresh('tenant', { event: 'b', listening: true }), ['t1']);
      await store.insert(fresh('user', { event: 'c', listening: true }), ['1']);
      const both = await store.list({ listeners: ['a', 'b'] }, 0, 100);
      assert.deepEqual([both.total, both.items.map((e) => e.message.id)], [2, [a.id, b.id]]);
      assert.deepEqual(
        (await store.list({ listeners: ['a', 'b'], userId: '1' }, 0, 100)).items.map((e) => e.message.id),
        [a.id],
      );
      assert.equal((await store.list({ listeners: [] }, 0, 100)).total, 0, 'no event: nothing');
      assert.equal((await store.list({ listeners: ['a', 'b'] }, 1, 1)).items[0]?.message.id, b.id, 'paged after the filter');
    },
  ],
  [
    'caps: a shared store refuses an insert past maxPendingPerTarget or maxMessages with ERR_SSE_QUEUE_FULL',
    async (store) => {
      assert.equal(store.shared, true, 'a case for shared stores: leave it out for a store of one process (sharedOnly)');
      for (let i = 0; i < TIGHT.maxPendingPerTarget; i++) await store.insert(fresh('user'), ['1']);
      await assert.rejects(store.insert(fresh('user'), ['1']), { code: 'ERR_SSE_QUEUE_FULL' });
      await store.insert(fresh('user'), ['2']);
      await store.insert(fresh('tenant'), ['t']);
      await assert.rejects(store.insert(fresh('user'), ['3']), { code: 'ERR_SSE_QUEUE_FULL' });
      assert.equal((await store.counts()).total, TIGHT.maxMessages, 'nothing stored past the caps');
    },
  ],
];
