import type { ExecutionContext } from 'ava';
import net from 'node:net';
import type { Hub } from '../../lib/index.js';

export const SECRET = 'test-secret-0123456789-abcdefghijklmnop';

/**
 * `host:port` of a node's internal endpoint. Nodes listen on port 0, so this is known only
 * once `hub.ready()` resolved: a port guessed free beforehand may be taken by then.
 */
export function addressOf(hub: Hub): string {
  const address = hub.cluster?.address;
  if (address === undefined || address.port === 0) throw new Error('not a started node of an HTTP cluster');
  return `${address.host}:${address.port}`;
}

/** Gives every node (started, listening) the addresses of all; each skips its own. Answers the list. */
export function introduce(hubs: Hub[]): string[] {
  const peers = hubs.map(addressOf);
  for (const hub of hubs) hub.cluster!.setPeers(peers);
  return peers;
}

/**
 * Makes a fixture node report its up peers' node ids, sorted, with `say` on every peer-up and
 * peer-down. Answers the report, to send it at other times too.
 */
export function reportPeers(hub: Hub, say: (msg: unknown) => void): () => void {
  const report = (): void =>
    say({
      peers: hub
        .cluster!.peers()
        .map((p) => p.nodeId)
        .sort(),
    });
  hub.on('peer-up', report);
  hub.on('peer-down', report);
  return report;
}

/** Waits until `predicate` holds, polling; fails after `timeoutMs`. */
export async function eventually(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A TCP proxy on loopback that records every byte in both directions: what someone on the
 * wire between two nodes would see. `retarget` sends new connections elsewhere, so that a
 * node restarted on another port keeps the address its peers know.
 */
export async function recordingProxy(
  t: ExecutionContext,
  targetPort: number,
): Promise<{ port: number; captured: () => Buffer; requests: () => Buffer; retarget: (port: number) => void }> {
  const chunks: Buffer[] = [];
  const sent: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  let target = targetPort;
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => {
      chunks.push(d);
      sent.push(d);
    });
    upstream.on('data', (d: Buffer) => chunks.push(d));
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    captured: () => Buffer.concat(chunks),
    /** What the proxied node was sent (requests only, in order). */
    requests: () => Buffer.concat(sent),
    retarget: (port) => {
      target = port;
    },
  };
}
