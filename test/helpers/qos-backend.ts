// Which store the durable-delivery unit tests (test/unit/qos.test.ts) run against: SQLite by
// default; test/unit/qos-redis.test.ts points them at a real redis-server, so that the same
// cases check both stores.
import type { QosOptions } from '../../lib/qos/qos.js';

export const qosBackend: { redisUrl: string | undefined; stores: number } = { redisUrl: undefined, stores: 0 };

/** Store options for one test: the SQLite `file`, or a fresh prefix on the Redis server (one store per test). */
export function storeOptions(file: string): Partial<QosOptions> {
  if (qosBackend.redisUrl === undefined) return { file };
  return { redis: qosBackend.redisUrl, redisPrefix: `unit-${process.pid}-${qosBackend.stores++}` };
}
