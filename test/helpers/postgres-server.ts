// A real PostgreSQL server for a test: Debian's binaries (/usr/lib/postgresql/<version>/bin),
// a fresh cluster in a temp directory, loopback only on a free port, stopped and removed when
// the test ends. PostgreSQL refuses to run as root: as root the server runs as `nobody`
// (setpriv execs it in place, so that the process we signal is the postmaster itself).
import type { ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../scripts/redis-process.js';

const ci = process.env.CI === 'true' || process.env.CI === '1';
const ROOT = '/usr/lib/postgresql';
const NOBODY = { uid: 65534, gid: 65534 };

/** The bin directory of the newest PostgreSQL installed, or undefined. */
export function postgresBin(): string | undefined {
  if (!existsSync(ROOT)) return undefined;
  const versions = readdirSync(ROOT)
    .filter((v) => /^\d+$/.test(v) && existsSync(path.join(ROOT, v, 'bin', 'postgres')) && existsSync(path.join(ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length === 0 ? undefined : path.join(ROOT, versions[0]!, 'bin');
}

/** Why a real PostgreSQL cannot run here, or undefined if it can (prints the reason; a skip fails under CI). */
export function postgresTest(file: string): { unavailable: string | undefined } {
  const unavailable =
    postgresBin() === undefined
      ? `PostgreSQL is not installed (apt-get install -y --no-install-recommends postgresql; .ci/run installs it)`
      : undefined;
  if (unavailable) console.log(`# ${file}: skipped: ${unavailable}${ci ? ' (CI counts this skip as a failure)' : ''}`);
  return { unavailable };
}

/** A PostgreSQL server the test owns. */
export class PostgresServer {
  readonly port: number;
  readonly dir: string;
  readonly #child: ChildProcess;

  private constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#child = child;
  }

  /** Starts a fresh cluster; stopped and its directory removed when the test ends, also when it fails. */
  static async start(t: ExecutionContext): Promise<PostgresServer> {
    const bin = postgresBin();
    if (bin === undefined) throw new Error('PostgreSQL is not installed');
    const dir = mkdtempSync(path.join(tmpdir(), 'sse-postgres-'));
    const root = process.getuid?.() === 0;
    if (root) chownSync(dir, NOBODY.uid, NOBODY.gid);
    // As root: run as nobody, with no supplementary groups; else as ourselves.
    const asUser = (command: string, args: string[]): [string, string[]] =>
      root ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', command, ...args]] : [command, args];
    const data = path.join(dir, 'data');
    const [initCmd, initArgs] = asUser(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const init = spawnSync(initCmd, initArgs, { encoding: 'utf8', cwd: dir });
    if (init.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
    }
    const port = await freePort();
    // Loopback only, its socket in its own directory, no fsync (a test's data need not survive a power loss).
    const [cmd, args] = asUser(path.join(bin, 'postgres'), [
      '-D',
      data,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-k',
      dir,
      '-F',
      '-c',
      'max_connections=50',
    ]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    const server = new PostgresServer(port, dir, child);
    t.teardown(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`postgres exited: ${output}`);
      if (await server.#ready()) return server;
      if (Date.now() > deadline) throw new Error(`postgres did not start on port ${port}: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A connection string to its `postgres` database. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Creates a database of its own for one store (a unique name), and answers its connection string. */
  async database(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } finally {
      await client.end();
    }
    return `postgres://postgres@127.0.0.1:${this.port}/${encodeURIComponent(name)}`;
  }

  async #ready(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Fast shutdown (SIGINT: open sessions are ended), and waits for the postmaster to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
