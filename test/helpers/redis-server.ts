import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, INSTALL_HINT, pingRedis, redisServerArgs, redisServerInstalled } from '../../scripts/redis-process.js';

const ci = process.env.CI === 'true' || process.env.CI === '1';

export { freePort };

/** Why a real redis-server cannot run here, or undefined if it can. */
export function redisUnavailable(): string | undefined {
  return redisServerInstalled() ? undefined : `redis-server is not installed (${INSTALL_HINT}; .ci/run installs it)`;
}

/** `test.serial`, or `test.skip` with a printed reason when redis-server is missing (a skip fails under CI). */
export function redisTest(file: string): { unavailable: string | undefined } {
  const unavailable = redisUnavailable();
  if (unavailable) console.log(`# ${file}: skipped: ${unavailable}${ci ? ' (CI counts this skip as a failure)' : ''}`);
  return { unavailable };
}

export interface RedisServerOptions {
  /** `appendonly yes` + `appendfsync everysec` (default true): what the docs recommend for durable messages. */
  aof?: boolean;
  /** Extra `--name value` arguments. */
  args?: string[];
}

/**
 * A real redis-server the test owns: loopback only, a free port, a temp directory, no
 * snapshots unless asked. Stopped and its directory removed when the test ends, also when it
 * fails. `restart()` comes back on the same port with the same data directory.
 */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | undefined;
  readonly #options: RedisServerOptions;

  private constructor(port: number, dir: string, options: RedisServerOptions) {
    this.port = port;
    this.dir = dir;
    this.#options = options;
  }

  static async start(t: ExecutionContext, options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = mkdtempSync(path.join(tmpdir(), 'sse-redis-'));
    const server = new RedisServer(await freePort(), dir, options);
    t.teardown(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await server.#spawn();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async #spawn(): Promise<void> {
    const aof = this.#options.aof ?? true;
    const args = [...redisServerArgs(this.port, this.dir, aof), ...(this.#options.args ?? [])];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
      if (await pingRedis(this.port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${this.port}: ${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGSTOP: the server keeps its sockets but answers nothing, like a long fork or a GC-paused VM. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** Stops the server (SIGTERM: with AOF, what was fsynced survives; `hard`: SIGKILL). */
  async stop(hard = false): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT');
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
    this.#child = undefined;
  }

  /** Stops and starts again on the same port with the same directory (AOF reloaded). */
  async restart(hard = false): Promise<void> {
    await this.stop(hard);
    await this.#spawn();
  }
}
