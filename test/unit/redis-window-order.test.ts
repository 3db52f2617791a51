import test from 'ava';
import { RedisWindowLog } from '../../lib/cluster/redis-window.js';
import { parseWindowId } from '../../lib/core/window-id.js';
import { RecoveryWindow } from '../../lib/local/recovery-window.js';
import { connectRedis, openRedis } from '../../lib/redis/redis-connection.js';
import { RedisWriteQueue } from '../../lib/redis/redis-write-queue.js';
import { RedisServer, redisTest } from '../helpers/redis-server.js';

const { unavailable } = redisTest('unit/redis-window-order');
const serial = unavailable ? test.skip : test.serial;

// A send's XADD is queued to leave with its PUBLISH, past ioredis' auto-pipeline; a resume
// read on the same node must still come after it, or a send made before the stream was
// registered is in neither the replay nor live.
serial('a resume read on the node that just sent finds the send, though commands were waiting in the auto-pipeline before it', async (t) => {
  const server = await RedisServer.start(t);
  const redis = openRedis(server.url);
  t.teardown(() => redis.disconnect());
  await connectRedis(redis, 5000);
  const window = new RecoveryWindow({ windowMs: 60_000, maxBytes: 1 << 20, slackMs: 1000 });
  const errors: unknown[] = [];
  const log = new RedisWindowLog(redis, new RedisWriteQueue(redis), `order-${process.pid}-${Date.now()}`, window, (err) => errors.push(err));
  t.teardown(() => log.close());
  await log.start();
  const from = parseWindowId(window.nextId().id)!;
  // A busy node's directory writes and beats sit in the auto-pipeline, to be written a loop turn later.
  const ping = redis.ping();
  const { id } = window.nextId();
  log.add(id, 'user', ['u1'], 'bell', false, Buffer.from(`id: ${id}\nevent: bell\ndata: 1\n\n`));
  const part = await log.since(from, { userId: 'u1', channels: [], listeners: [] });
  await ping;
  t.deepEqual(errors, []);
  t.true(part.covered);
  t.deepEqual(
    part.frames.map((f) => f.toString()),
    [`id: ${id}\nevent: bell\ndata: 1\n\n`],
  );
});
