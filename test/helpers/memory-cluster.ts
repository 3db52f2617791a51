import type { ExecutionContext } from 'ava';
import { MemoryBus, type ClusterRequest, type HelloAnswer, type MemoryTransport, type RequestHandler } from '../../lib/index.js';
import { startPlugin, type StartedPlugin } from './server.js';

/**
 * Three nodes (a, b, c) of one hub in this process, joined by an in-memory bus, each started
 * and ready. `timeoutMs`: the cluster's answer timeout; `extra`: more plugin options per node.
 */
export async function threeNodes(
  t: ExecutionContext,
  { timeoutMs, extra = {} }: { timeoutMs: number; extra?: Record<string, object> },
): Promise<{ bus: MemoryBus; a: StartedPlugin; b: StartedPlugin; c: StartedPlugin }> {
  const bus = new MemoryBus();
  const node = async (id: string): Promise<StartedPlugin> => {
    const started = await startPlugin(t, { cluster: { transport: bus.transport(id), timeoutMs }, ...(extra[id] ?? {}) });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node('a');
  const b = await node('b');
  const c = await node('c');
  return { bus, a, b, c };
}

/** What the node on `transport` does with each request from a peer (`handler`: what it would do), and what its hello says. */
export function intercept(
  transport: MemoryTransport,
  how: (from: string, request: ClusterRequest, handler: RequestHandler) => Promise<unknown>,
  hello: (self: HelloAnswer) => HelloAnswer = (self) => self,
): void {
  const start = transport.start.bind(transport);
  transport.start = (handler, self) => start((from, request) => how(from, request, handler), hello(self));
}

export const carriesDurable = (request: ClusterRequest): boolean => request.type === 'send' && request.items.some((item) => item.id !== undefined);

/**
 * Lets the node on `transport` (before it starts) lose a peer's send that carries a durable
 * message: after `loseNext()`, it never answers the next such send (lost on the way), so its
 * sender times out and both stay up. `loseNext` resolves once one was lost.
 */
export function durableSendLoser(transport: MemoryTransport): { loseNext: () => Promise<void> } {
  let lose: (() => void) | undefined;
  intercept(transport, (from, request, handler) => {
    if (lose === undefined || !carriesDurable(request)) return handler(from, request);
    lose();
    lose = undefined;
    return new Promise<never>(() => undefined);
  });
  return { loseNext: () => new Promise<void>((resolve) => (lose = resolve)) };
}
