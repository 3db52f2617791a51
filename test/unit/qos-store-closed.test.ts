// A closed durable store refuses with the library's closed error (ERR_SSE_CLOSED, 503 on the
// wire), not a plain Error: both engines, without a server (nothing reaches Redis once closed).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SseClosedError } from '../../lib/core/errors.js';
import type { NewMessage } from '../../lib/qos/qos-store.js';
import { RedisQosStore } from '../../lib/qos/redis-store.js';
import { SqliteQosStore } from '../../lib/qos/sqlite-store.js';

const fresh = (): NewMessage => ({ kind: 'user', event: 'x', data: '1', listening: false, createdAt: Date.now(), expiresAt: Date.now() + 60_000 });
const closed = { instanceOf: SseClosedError, code: 'ERR_SSE_CLOSED' };

test('a closed SQLite store refuses inserts and removals with SseClosedError', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-unit-store-closed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new SqliteQosStore(join(dir, 'qos.db'), { synchronous: 'NORMAL', lockTimeoutMs: 1000, integrityCheck: false });
  await store.close();
  await t.throwsAsync(store.insert(fresh(), ['7']), closed);
  await t.throwsAsync(store.remove([{ messageId: 'x', targets: [{ kind: 'user', key: '7' }] }]), closed);
});

test('a closed Redis store refuses inserts, removals and reads with SseClosedError', async (t) => {
  // Port 1 on loopback: nothing listens, and nothing is asked once the store is closed.
  const store = new RedisQosStore('redis://127.0.0.1:1', { prefix: 'closed-test', commandTimeoutMs: 500, maxPendingPerTarget: 10, maxMessages: 10 });
  await store.close();
  await t.throwsAsync(store.insert(fresh(), ['7']), closed);
  await t.throwsAsync(store.remove([{ messageId: 'x', targets: [{ kind: 'user', key: '7' }] }]), closed);
  await t.throwsAsync(store.counts(), closed);
});
