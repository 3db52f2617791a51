// Request/response over a forked child's IPC channel, both ends.
import type { ChildProcess } from 'node:child_process';

interface Request {
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type Handler = (args: Record<string, unknown>) => unknown;

/**
 * Child side: answers requests from the parent, and exits when the parent goes away (so a
 * killed or crashed orchestrator never leaves servers or clients running).
 */
export function serveIpc(handlers: Record<string, Handler>): void {
  if (process.send === undefined) throw new Error('must be started by scripts/bench/fanout.ts (needs an IPC channel)');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (raw) => {
    const req = raw as Request;
    const handler = handlers[req.cmd];
    void (async () => {
      let reply: Reply;
      try {
        if (handler === undefined) throw new Error(`unknown command ${req.cmd}`);
        reply = { id: req.id, ok: true, result: await handler(req.args) };
      } catch (err) {
        reply = { id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
      }
      process.send?.(reply);
    })();
  });
}

/** Parent side: one RPC endpoint per child. */
export class Rpc {
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    readonly child: ChildProcess,
    readonly label: string,
  ) {
    child.on('message', (raw) => {
      const reply = raw as Reply;
      const p = this.#pending.get(reply.id);
      if (p === undefined) return;
      this.#pending.delete(reply.id);
      clearTimeout(p.timer);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(`${label}: ${reply.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`${label} exited (code ${code}, signal ${signal})`));
      }
      this.#pending.clear();
    });
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.label}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ id, cmd, args } satisfies Request);
    });
  }
}
