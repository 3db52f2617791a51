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

/** Starts the IPC command loop once `server` listens; reports the port to the parent. */
export async function runServer(server: Server, adapter: Adapter): Promise<void> {
  server.listen(0, '127.0.0.1', 4096);
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;

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

    stop: () => {
      // Reply first, then exit (so that --cpu-prof writes its profile).
      setTimeout(() => process.exit(0), 50);
      return true;
    },
  });
  process.send?.({ ready: port });
}
