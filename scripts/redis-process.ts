// A redis-server of its own for `npm run example:redis` and `npm run bench:redis`: loopback
// only, a free port, a temp directory removed when it stops. Never the system service.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const INSTALL_HINT = 'apt-get install -y --no-install-recommends redis-server';

/** Whether the Debian package's redis-server can be run. */
export function redisServerInstalled(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface RedisProcess {
  url: string;
  port: number;
  dir: string;
  child: ChildProcess;
  /** SIGTERM (AOF flushed), waits for the exit, removes the directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Ports handed out by {@link freePort} in this process. */
const handedOut = new Set<number>();

/**
 * The ports the kernel hands out by itself (`listen(0)` and every outgoing connection's local
 * port): Linux's `ip_local_port_range`, 32768–60999 unless configured.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 32768;
  } catch {
    return 32768;
  }
}

/** Whether `port` can be bound on 127.0.0.1 now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port free on 127.0.0.1 now, for a server told its port (redis-server, a LAN node in a
 * static peer list). Taken below the ephemeral range: a port the kernel picked for
 * `listen(0)` and that was closed again may be given to any test's next outgoing connection
 * before the server binds it (EADDRINUSE, seen in CI). Below that range only explicit binds
 * take ports, and this process never hands one out twice.
 */
export async function freePort(): Promise<number> {
  const high = Math.min(ephemeralLow(), 65536) - 1;
  const low = Math.max(1024, high - 12_000);
  for (let i = 0; i < 100; i++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${low}-${high} on 127.0.0.1`);
}

/**
 * Arguments of a redis-server of our own: loopback only, no snapshots, AOF with
 * `appendfsync everysec` (the setting the README recommends) unless `aof` is false.
 */
export function redisServerArgs(port: number, dir: string, aof: boolean): string[] {
  // prettier-ignore
  return [
    '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '',
    '--appendonly', aof ? 'yes' : 'no', '--appendfsync', 'everysec',
    '--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'warning',
  ];
}

/** Whether a Redis on 127.0.0.1:`port` answers PING (a raw socket: no client needed). */
export async function pingRedis(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** CPU seconds the redis-server used so far (Linux /proc, 10 ms steps; NaN elsewhere): is Redis what limits a phase? */
export function redisCpuSeconds(redis: RedisProcess): number {
  try {
    const fields = readFileSync(`/proc/${redis.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
  } catch {
    return NaN;
  }
}

/** Starts redis-server on 127.0.0.1 (`appendonly yes`, `appendfsync everysec` unless `aof: false`) and waits until it answers PING. */
export async function startRedisServer(options: { aof?: boolean } = {}): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'koa-sse-redis-'));
  const port = await freePort();
  const aof = options.aof ?? true;
  const child = spawn(
    'redis-server',
    redisServerArgs(port, dir, aof),
    // Its own process group: Ctrl-C in the terminal reaches the nodes, not Redis, which stops last.
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  // However this process ends, no redis-server and no temp directory stays behind.
  const cleanUp = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanUp);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
      process.off('exit', cleanUp);
    })());
  const deadline = Date.now() + 10_000;
  while (!(await pingRedis(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not start on 127.0.0.1:${port}: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url: `redis://127.0.0.1:${port}`, port, dir, child, stop };
}
