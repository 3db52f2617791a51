// The durable store contract (`koa-sse-server/testing`'s storeContract) run against every
// store this repository has: SQLite (a file per case), Redis (a real redis-server, a prefix
// per case) and the PostgreSQL example (a real PostgreSQL server, a table prefix per case).
// A user runs the same cases against a store of their own.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteQosStore } from '../lib/qos/sqlite-store.js';
import { RedisQosStore } from '../lib/qos/redis-store.js';
import { runStoreContract, storeContract } from '../lib/testing.js';
import type { QosStore } from '../lib/index.js';
import { PostgresQosStore } from '../example/postgres-qos-store.js';
import { PostgresServer, postgresTest } from './helpers/postgres-server.js';
import { RedisServer, redisTest } from './helpers/redis-server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sse-store-contract-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** An ava test of one case: the case asserts with node:assert (it throws), ava counts a pass. */
const run = (body: () => Promise<void>) => async (t: ExecutionContext) => {
  await body();
  t.pass();
};

for (const c of storeContract(
  () => new SqliteQosStore(path.join(dir, `s${n++}.db`), { synchronous: 'NORMAL', lockTimeoutMs: 1000, integrityCheck: true }),
)) {
  if (!c.sharedOnly) test(`SQLite: ${c.name}`, run(c.run));
}

test('runStoreContract runs every case that applies; a store that breaks the contract fails it', async (t) => {
  const sqlite = (): SqliteQosStore =>
    new SqliteQosStore(path.join(dir, `s${n++}.db`), { synchronous: 'NORMAL', lockTimeoutMs: 1000, integrityCheck: true });
  // Every case that applies (SQLite is a store of one process: not the sharedOnly ones).
  await runStoreContract(sqlite);
  // A sharedOnly case fails for a store of one process: that is what the mark says.
  const caps = storeContract(sqlite).find((c) => c.sharedOnly)!;
  await t.throwsAsync(caps.run(), { message: /leave it out/ });
  // A store that ignores `limit` (a page would never end short): the contract catches it.
  const unbounded = (): QosStore => {
    const store = sqlite();
    const messagesFor = store.messagesFor.bind(store);
    return Object.assign(store, {
      messagesFor: (refs: Parameters<QosStore['messagesFor']>[0], afterId: string, _limit: number, now: number, events?: string[]) =>
        messagesFor(refs, afterId, 1_000_000, now, events),
    });
  };
  const broken = storeContract(unbounded).find((c) => c.name.includes('at most limit'))!;
  await t.throwsAsync(broken.run(), { name: 'AssertionError' });
});

// One server per engine for the file. Hooks have no t.teardown: the servers' teardowns run in the after hook.
const teardowns: (() => Promise<void> | void)[] = [];
const context = { teardown: (fn: () => Promise<void> | void) => void teardowns.push(fn) } as unknown as ExecutionContext;
test.after.always(async () => {
  for (const fn of teardowns.reverse()) await fn();
});

const redisAvailable = redisTest('test/store-contract.test.ts (Redis)');
let redis: RedisServer | undefined;
if (redisAvailable.unavailable === undefined) test.before(async () => void (redis = await RedisServer.start(context)));
for (const c of storeContract(async (caps) => {
  const store = new RedisQosStore(redis!.url, { prefix: `contract-${process.pid}-${n++}`, commandTimeoutMs: 2000, ...caps });
  await new Promise<void>((resolve) => store.onReady(resolve));
  return store;
})) {
  (redisAvailable.unavailable === undefined ? test : test.skip)(`Redis: ${c.name}`, run(c.run));
}

const postgresAvailable = postgresTest('test/store-contract.test.ts (PostgreSQL)');
let postgres: PostgresServer | undefined;
if (postgresAvailable.unavailable === undefined) test.before(async () => void (postgres = await PostgresServer.start(context)));
for (const c of storeContract((caps) => PostgresQosStore.open({ pool: postgres!.url, table: `contract_${n++}`, ...caps }))) {
  (postgresAvailable.unavailable === undefined ? test : test.skip)(`PostgreSQL: ${c.name}`, run(c.run));
}
