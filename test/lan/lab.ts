// Shared steps of the LAN lab's tests: nodes (test/fixtures/lan-node.ts) started in their
// hosts' namespaces, and waits on their state with deadlines.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SECRET } from '../helpers/cluster.js';
import type { LanHost } from '../helpers/lan.js';
import { netnsUnavailable, NsProcess, type Teardown } from '../helpers/netns.js';

/** Why the lab cannot run here (it needs root for namespaces), or undefined. */
export function labUnavailable(): string | undefined {
  const reason = netnsUnavailable();
  return reason === undefined ? undefined : `the LAN lab needs network namespaces: ${reason}`;
}

/** Why the slow-link test cannot run (its link relay is a Python script), or undefined. */
export function relayUnavailable(): string | undefined {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'python3 (the slow-link relay, test/helpers/tap-relay.py) is missing';
  }
}

export interface LabNode {
  proc: NsProcess;
  host: LanHost;
  nodeId: string;
  /** The address it announces, as `cluster.address` says. */
  address: { host: string; port: number };
  /** Its SQLite file, with durable delivery. */
  qosFile?: string;
}

export interface NodeEnv {
  NODE_ID?: string;
  /** Durable delivery in a SQLite file of a fresh temp dir (`true`), or in this file (a node restarted on its file). */
  qos?: boolean | string;
  /** JSON of more plugin options. */
  HUB_OPTIONS?: string;
  /** Port of its web server (every address). Default 8080. */
  WEB_PORT?: string;
}

/** Starts a lab node on `host` and waits until it listens. */
export async function startNode(t: Teardown, host: LanHost, env: NodeEnv = {}): Promise<LabNode> {
  const vars: Record<string, string> = { SECRET };
  if (env.NODE_ID !== undefined) vars.NODE_ID = env.NODE_ID;
  if (env.HUB_OPTIONS !== undefined) vars.HUB_OPTIONS = env.HUB_OPTIONS;
  if (env.WEB_PORT !== undefined) vars.WEB_PORT = env.WEB_PORT;
  if (env.qos === true) {
    const dir = mkdtempSync(join(tmpdir(), 'sse-lan-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    vars.QOS_FILE = join(dir, 'qos.db');
  } else if (typeof env.qos === 'string') vars.QOS_FILE = env.qos;
  const proc = new NsProcess(t, host.ns, ['test/fixtures/lan-node.ts'], vars);
  const ready = await proc.waitFor((m) => m.ready === true, `the node on ${host.address} listening`, 20_000);
  return {
    proc,
    host,
    nodeId: String(ready.nodeId),
    address: ready.address as LabNode['address'],
    ...(vars.QOS_FILE === undefined ? {} : { qosFile: vars.QOS_FILE }),
  };
}

/** Polls `probe` every 100 ms until `done` holds for its answer; fails with the last answer after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T>, done: (answer: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe();
    if (done(answer)) return answer;
    if (Date.now() > deadline) throw new Error(`Timed out (${timeoutMs} ms) waiting for ${what}; last: ${JSON.stringify(answer).slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const same = (a: unknown, b: readonly string[]): boolean => JSON.stringify(a) === JSON.stringify([...b].sort());

/**
 * Waits until `node` has exactly `up` as peers and sees each of `down` down: unreachable, or
 * gone once discovery forgot it (mDNS: 30 s without an announcement, the default TTL). A wait
 * that starts late (after a re-replication, under load) meets the second: CI saw a killed
 * node's record expire before the check began. Nothing else is unreachable.
 */
export function peersAre(node: LabNode, up: readonly string[], down: readonly string[] = [], what = '', timeoutMs = 15_000): Promise<unknown> {
  return until(
    () => node.proc.request({ cmd: 'peers' }),
    (m) => same(m.peers, up) && (m.unreachable as string[]).every((id) => down.includes(id)),
    `${node.host.address} to see peers ${JSON.stringify(up)} and unreachable ${JSON.stringify(down)} ${what}`,
    timeoutMs,
  );
}

/** Waits until every node sees all the others up and none unreachable. */
export async function allPeers(nodes: readonly LabNode[], timeoutMs = 15_000): Promise<void> {
  await Promise.all(
    nodes.map((n) =>
      peersAre(
        n,
        nodes.filter((o) => o !== n).map((o) => o.nodeId),
        [],
        '',
        timeoutMs,
      ),
    ),
  );
}

/** Opens a stream for `user` on `node`; answers the stream's ref (its events carry it as `stream`). */
export async function openStream(node: LabNode, user: string, channel?: string): Promise<string> {
  const answer = await node.proc.request({ cmd: 'open', user, ...(channel === undefined ? {} : { channel }) }, 15_000);
  return String(answer.ref);
}

/** Events of one stream so far, by name. */
export function eventsOf(node: LabNode, stream: string, event: string): Record<string, unknown>[] {
  return node.proc.messages.filter((m) => m.stream === stream && m.event === event);
}

/** Waits until the stream got `count` events named `event`. */
export function received(node: LabNode, stream: string, event: string, count = 1, timeoutMs = 10_000): Promise<unknown> {
  return node.proc.waitFor(
    () => eventsOf(node, stream, event).length >= count,
    `${count} ${event} on stream ${stream} at ${node.host.address}`,
    timeoutMs,
  );
}

/** Cluster-wide answer of a query on `node`. */
export async function query(node: LabNode, name: string, args: unknown[] = []): Promise<{ value: unknown; partial: boolean; failed: unknown[] }> {
  const answer = await node.proc.request({ cmd: 'query', name, args });
  return answer as unknown as { value: unknown; partial: boolean; failed: unknown[] };
}

/** Sorted user ids a query of `userIds` answers on `node`, and whether it was partial. */
export async function userIds(node: LabNode): Promise<{ ids: string[]; partial: boolean }> {
  const { value, partial } = await query(node, 'userIds');
  return { ids: (value as string[]).map(String).sort(), partial };
}
