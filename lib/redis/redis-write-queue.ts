import type { Redis } from 'ioredis';
import { ioredis, isRedisCluster, type RedisClient } from './redis-connection.js';

interface Queued {
  name: string;
  args: (string | Buffer | number)[];
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Commands that must reach Redis in the order they were made and without delay: a send's
 * recovery-window XADD and the PUBLISH that follows it. Queued until {@link flush}, then written
 * in one socket write, past ioredis' auto-pipeline. The auto-pipeline writes a loop turn later
 * (`setImmediate`), builds a Pipeline object each turn, and holds a turn's commands until the
 * previous turn's replies are in: a send then waited up to a round trip behind its predecessor.
 * A send that is published flushes the queue first, so that its XADD and PUBLISH leave in the
 * same write; what no publish follows is written at the next loop turn.
 */
export class RedisWriteQueue {
  readonly #redis: RedisClient;
  readonly #Command: typeof import('ioredis').Command;
  /** A Redis Cluster client routes each command to its shard's connection: no one stream to cork. */
  readonly #cluster: boolean;
  #queued: Queued[] = [];
  #scheduled = false;

  constructor(redis: RedisClient) {
    this.#redis = redis;
    this.#Command = ioredis().Command;
    this.#cluster = isRedisCluster(redis);
  }

  /** Queues one command; its reply (or failure: not connected, timed out, an error reply). */
  add(name: string, args: (string | Buffer | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#queued.push({ name, args, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes what is queued, in order (one socket write on a single Redis). */
  flush(): void {
    this.#scheduled = false;
    if (this.#queued.length === 0) return;
    const queued = this.#queued;
    this.#queued = [];
    const Command = this.#Command;
    const stream = this.#cluster ? undefined : (this.#redis as Redis).stream;
    const cork = stream !== undefined && queued.length > 1 && this.#redis.status === 'ready';
    if (cork) stream.cork();
    try {
      for (const q of queued) {
        const command = new Command(q.name, q.args, { replyEncoding: 'utf8' });
        command.promise.then(q.resolve, q.reject);
        void this.#redis.sendCommand(command);
      }
    } finally {
      if (cork) stream.uncork();
    }
  }
}
