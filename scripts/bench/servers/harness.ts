// The part every server under test shares: listening on loopback, and the commands the
// orchestrator sends over IPC (memory after GC, CPU time, burst / paced broadcasts, targeted
// sends). Each server file only says how to accept a stream, broadcast and send to one user.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { writeHeapSnapshot } from 'node:v8';
import type { AddressInfo } from 'node:net';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import { serveIpc } from '../ipc.js';
import { nowUs, payload } from '../stats.js';

/**
 * The user of a stream request (`GET /sse/connect?access-token=<user>`), as every server under
 * test reads it; anything else is answered 404 and gives undefined.
 */
export function streamUser(req: IncomingMessage, res: ServerResponse): string | undefined {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname !== '/sse/connect') {
    res.writeHead(404).end();
    return undefined;
  }
  return url.searchParams.get('access-token') ?? '';
}

export interface Adapter {
  /** Sends one event to every connection. */
  broadcast(event: string, data: object): void;
  /** Sends one event to the connections of one user (`u<n>`). */
  sendToUser(userId: string, event: string, data: object): void;
  /** Live connections. */
  count(): number;
  /** Called once, just before the server listens. */
  prepare?(): void;
  /** The server's own graceful shutdown, before its sockets are closed (storm.ts). */
  close?(): Promise<void>;
  /** A durable send to one user (only servers that have durable delivery). */
  sendDurable?(userId: string, event: string, data: object): Promise<unknown>;
}

export const EVENT = 'tick';

export interface CpuMark {
  t: number;
  cpu: number;
}

function cpuMark(): CpuMark {
  const c = process.cpuUsage();
  return { t: nowUs(), cpu: c.user + c.system };
}

async function collectGarbage(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('start the server with --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(20);
  }
  return process.memoryUsage();
}

function listen(server: Server, adapter: Adapter, port: number): Promise<number> {
  adapter.prepare?.();
  server.listen(port, '127.0.0.1', 4096);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => resolve((server.address() as AddressInfo).port));
  });
}

/**
 * Starts the IPC command loop once `server` listens; reports the port to the parent. With
 * `BENCH_PORT` in the environment the server listens on that port only when told (`listen`):
 * storm.ts starts the next process while the previous one still holds the port.
 */
export async function runServer(server: Server, adapter: Adapter): Promise<void> {
  const fixedPort = process.env.BENCH_PORT;
  let port = fixedPort === undefined ? await listen(server, adapter, 0) : 0;
  let pacing = false;

  serveIpc({
    port: () => port,
    count: () => adapter.count(),
    mem: () => collectGarbage(),
    cpu: () => cpuMark(),
    snapshot: (a) => writeHeapSnapshot(a.file as string),

    /** `k` broadcasts, `batch` of them back to back in one event-loop turn, then yield. */
    burst: async (a) => {
      const k = a.k as number;
      const batch = a.batch as number;
      const start = cpuMark();
      for (let i = 0; i < k;) {
        for (let j = 0; j < batch && i < k; j++, i++) adapter.broadcast(EVENT, payload(i));
        await turn();
      }
      return { start, issued: cpuMark() };
    },

    /** `k` broadcasts, one every `intervalMs` (drift-corrected). */
    paced: async (a) => {
      const k = a.k as number;
      const interval = a.intervalMs as number;
      const start = cpuMark();
      const t0 = performance.now();
      for (let i = 0; i < k; i++) {
        const wait = t0 + i * interval - performance.now();
        if (wait > 0) await sleep(wait);
        adapter.broadcast(EVENT, payload(i));
      }
      return { start, issued: cpuMark() };
    },

    /** `m` sends to random users among `users`, `batch` per event-loop turn. */
    targeted: async (a) => {
      const m = a.m as number;
      const users = a.users as number;
      const batch = a.batch as number;
      // The user ids are drawn before the clock starts: the benchmark times sends, not Math.random.
      const ids = Array.from({ length: m }, () => `u${Math.floor(Math.random() * users)}`);
      const start = cpuMark();
      for (let i = 0; i < m;) {
        for (let j = 0; j < batch && i < m; j++, i++) adapter.sendToUser(ids[i]!, EVENT, payload(i));
        await turn();
      }
      return { start, issued: cpuMark() };
    },

    listen: async () => {
      port = await listen(server, adapter, Number(fixedPort));
      return cpuMark();
    },

    /**
     * Graceful shutdown; the process exits after replying. The port is released first (as a
     * deploy takes a node out of the pool first), so that the next process can take it while
     * this one closes its streams: the server's own close, then every socket.
     */
    unlisten: () => {
      server.close();
      return true;
    },
    shutdown: async () => {
      const start = cpuMark();
      await adapter.close?.();
      server.closeAllConnections();
      setTimeout(() => process.exit(0), 50);
      return { start, end: cpuMark() };
    },

    /** `perUser` durable sends to each of u0 .. u<users-1>, `batch` in flight. */
    durable: async (a) => {
      if (adapter.sendDurable === undefined) throw new Error('this server has no durable delivery');
      const send = adapter.sendDurable.bind(adapter);
      const users = a.users as number;
      const perUser = a.perUser as number;
      const t0 = performance.now();
      for (let j = 0; j < perUser; j++) {
        for (let u = 0; u < users; u += 1000) {
          const sends = [];
          for (let k = u; k < Math.min(users, u + 1000); k++) sends.push(send(`u${k}`, 'bell', { d: j }));
          await Promise.all(sends);
        }
      }
      return { sent: users * perUser, ms: performance.now() - t0 };
    },

    /** Sends to random users among `users` at `rate`/s until `stopPace` or `maxSeconds`. */
    pace: async (a) => {
      const rate = a.rate as number;
      const users = a.users as number;
      const until = performance.now() + (a.maxSeconds as number) * 1000;
      const t0 = performance.now();
      let sent = 0;
      pacing = true;
      while (pacing && performance.now() < until) {
        const wait = t0 + (sent * 1000) / rate - performance.now();
        if (wait > 0) await sleep(wait);
        adapter.sendToUser(`u${Math.floor(Math.random() * users)}`, EVENT, payload(sent));
        sent++;
      }
      return { sent };
    },
    stopPace: () => {
      pacing = false;
      return true;
    },

    stop: () => {
      // Reply first, then exit (so that --cpu-prof writes its profile).
      setTimeout(() => process.exit(0), 50);
      return true;
    },
  });
  process.send?.({ ready: port });
}
