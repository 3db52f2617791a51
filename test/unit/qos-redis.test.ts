// The durable-delivery unit cases of test/unit/qos.test.ts, run against the Redis store: one
// real redis-server (loopback, free port, AOF) for the file, a fresh key prefix per test.
// The cases are imported (declared before the hook below, which runs before any of them).
import test, { type ExecutionContext } from 'ava';
import { qosBackend } from '../helpers/qos-backend.js';
import { RedisServer, redisTest } from '../helpers/redis-server.js';
import './qos.test.js';

const { unavailable } = redisTest('unit/qos-redis');
const ci = process.env.CI === 'true' || process.env.CI === '1';
if (unavailable === undefined) {
  // Hooks have no t.teardown: the server's teardown runs in the after hook instead.
  const teardowns: (() => Promise<void> | void)[] = [];
  const context = { teardown: (fn: () => Promise<void> | void) => void teardowns.push(fn) } as unknown as ExecutionContext;
  test.before(async () => {
    qosBackend.redisUrl = (await RedisServer.start(context)).url;
  });
  test.after.always(async () => {
    for (const fn of teardowns) await fn();
  });
} else if (ci) {
  test('redis-server is available under CI', (t) => t.fail(unavailable));
}
// Without redis-server (outside CI) the cases run on SQLite again; the reason was printed.
