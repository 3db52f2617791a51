// What a worker's options become (WorkerContext) and how PrimaryDiscovery turns the
// primary's lists into found/lost, without processes: the IPC channel is an EventEmitter.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { REDIS_DISCOVERY } from '../../lib/cluster/cluster-options.js';
import { CombinedDiscovery, PrimaryDiscovery, type PrimaryChannel } from '../../lib/cluster/primary-discovery.js';
import { StaticDiscovery, type PeerAddress } from '../../lib/cluster/discovery.js';
import { WorkerContext } from '../../lib/workers/worker-context.js';

class FakeChannel extends EventEmitter implements PrimaryChannel {
  readonly sent: unknown[] = [];
  seq = 0;
  send = (message: unknown): boolean => this.sent.push(message) > 0;
  peers(group: string, nodes: { nodeId: string; host: string; port: number }[]): void {
    this.emit('message', { sse: 'worker-peers', group, nodes, seq: ++this.seq });
  }
  /** What the node said of its verified peers, as `seq:ids`. */
  get verified(): string[] {
    return this.sent
      .filter((m) => (m as { sse: string }).sse === 'worker-verified')
      .map((m) => {
        const v = m as { seq: number; peers: string[] };
        return `${v.seq}:${v.peers.join(',')}`;
      });
  }
}

const init = (slot: number) => ({ sse: 'worker-init' as const, slot, workers: 2, secret: 's'.repeat(43), runId: 'abc123' });

test('a worker node announces itself to the primary and follows its lists: found, lost, never itself', async (t) => {
  const channel = new FakeChannel();
  const seen: string[] = [];
  const d = new PrimaryDiscovery(channel);
  d.start(
    { nodeId: 'w1', group: 'g', host: '127.0.0.1', port: 4001 },
    { found: (a: PeerAddress) => seen.push(`+${a.port}`), lost: (a: PeerAddress) => seen.push(`-${a.port}`) },
  );
  t.deepEqual(channel.sent, [{ sse: 'worker-node', group: 'g', node: { nodeId: 'w1', host: '127.0.0.1', port: 4001 } }]);
  channel.peers('g', [
    { nodeId: 'w1', host: '127.0.0.1', port: 4001 },
    { nodeId: 'w2', host: '127.0.0.1', port: 4002 },
  ]);
  channel.peers('other', [{ nodeId: 'x', host: '127.0.0.1', port: 5000 }]);
  // w2 crashed, its replacement listens elsewhere.
  channel.peers('g', [{ nodeId: 'w1', host: '127.0.0.1', port: 4001 }]);
  channel.peers('g', [
    { nodeId: 'w1', host: '127.0.0.1', port: 4001 },
    { nodeId: 'w2', host: '127.0.0.1', port: 4003 },
  ]);
  t.deepEqual(seen, ['+4002', '-4002', '+4003']);
  d.close();
  t.deepEqual(channel.sent.at(-1), { sse: 'worker-node-gone', group: 'g', nodeId: 'w1' });
  t.is(channel.listenerCount('message'), 0);
});

test("a worker node answers each of the primary's lists with the peers it verified since: a peer the list dropped is gone from the answer", (t) => {
  const channel = new FakeChannel();
  const d = new PrimaryDiscovery(channel);
  // Like the HTTP transport: a lost address's peer is dropped (and said) before lost returns.
  const verified = new Set<string>();
  const byPort = new Map([
    [4002, 'w2'],
    [4003, 'w2'],
  ]);
  d.start(
    { nodeId: 'w1', group: 'g', host: '127.0.0.1', port: 4001 },
    {
      found: () => {},
      lost: (a) => {
        verified.delete(byPort.get(a.port)!);
        d.verified([...verified]);
      },
    },
  );
  // Nothing said before the first list: the answer names which list it answers.
  d.verified([]);
  t.deepEqual(channel.verified, []);
  const w2 = { nodeId: 'w2', host: '127.0.0.1', port: 4002 };
  channel.peers('g', [{ nodeId: 'w1', host: '127.0.0.1', port: 4001 }, w2]);
  t.deepEqual(channel.verified, ['1:']);
  verified.add('w2');
  d.verified([...verified]);
  // A health check that changes nothing says nothing.
  d.verified([...verified]);
  t.deepEqual(channel.verified, ['1:', '1:w2']);
  // w2 replaced under the same id: the list without it, then with the new one.
  channel.peers('g', [{ nodeId: 'w1', host: '127.0.0.1', port: 4001 }]);
  channel.peers('g', [
    { nodeId: 'w1', host: '127.0.0.1', port: 4001 },
    { nodeId: 'w2', host: '127.0.0.1', port: 4003 },
  ]);
  t.deepEqual(channel.verified, ['1:', '1:w2', '2:', '3:']);
  d.verified(['w2']);
  t.deepEqual(channel.verified.at(-1), '3:w2');
  d.close();
  d.verified([]);
  t.deepEqual(channel.verified.at(-1), '3:w2');
});

test('a discovery settles once started or closed (a worker says it serves after that)', async (t) => {
  const channel = new FakeChannel();
  const started = new PrimaryDiscovery(channel);
  const closed = new PrimaryDiscovery(channel);
  started.start({ nodeId: 'w1', group: 'g', host: '127.0.0.1', port: 4001 }, { found: () => {}, lost: () => {} });
  closed.close();
  await Promise.all([started.settled, closed.settled]);
  const never = new PrimaryDiscovery(channel);
  t.is(await Promise.race([never.settled.then(() => 'settled'), Promise.resolve('pending')]), 'pending');
});

test('outside a worker PrimaryDiscovery refuses to start', (t) => {
  const d = new PrimaryDiscovery({ on: () => undefined, off: () => undefined, send: undefined });
  t.throws(() => d.start({ nodeId: 'a', group: 'g', host: '127.0.0.1', port: 1 }, { found: () => {}, lost: () => {} }), {
    instanceOf: TypeError,
  });
});

test('combined discoveries find an address once and lose it with the last one that had it', async (t) => {
  const channel = new FakeChannel();
  const seen: string[] = [];
  const list = new StaticDiscovery(['127.0.0.1:4002']);
  const d = new CombinedDiscovery([list, new PrimaryDiscovery(channel)]);
  await d.start(
    { nodeId: 'w1', group: 'g', host: '127.0.0.1', port: 4001 },
    { found: (a) => seen.push(`+${a.port}`), lost: (a) => seen.push(`-${a.port}`) },
  );
  channel.peers('g', [{ nodeId: 'w2', host: '127.0.0.1', port: 4002 }]);
  list.setPeers([]);
  t.deepEqual(seen, ['+4002']);
  channel.peers('g', []);
  t.deepEqual(seen, ['+4002', '-4002']);
  // The transport's verified peers reach the primary's part.
  d.verified(['w2']);
  t.deepEqual(channel.verified.at(-1), '2:w2');
});

test("a worker's cluster options: the primary's secret and discovery, loopback, a node id per slot", (t) => {
  const w = new WorkerContext(init(2), new FakeChannel());
  const options = w.cluster({ timeoutMs: 500 });
  t.is(options.secret, 's'.repeat(43));
  t.is(options.host, '127.0.0.1');
  t.is(options.nodeId, 'abc123-w2');
  t.is(options.timeoutMs, 500);
  t.true(options.discovery instanceof PrimaryDiscovery);
  // Several machines: the list joins the primary's workers, a fixed port per slot, every address.
  const lan = w.cluster({ secret: 'x'.repeat(32), peers: ['10.0.0.5:4100'], port: 4100, nodeId: 'host-a' });
  t.true(lan.discovery instanceof CombinedDiscovery);
  t.is(lan.peers, undefined);
  t.is(lan.host, undefined);
  t.is(lan.port, 4101);
  t.is(lan.nodeId, 'host-a-w2');
  // The Redis engine finds its peers in Redis; it tells the primary which it counts.
  const redis = w.cluster({ redis: 'redis://127.0.0.1:1' });
  t.deepEqual({ ...redis }, { redis: 'redis://127.0.0.1:1', nodeId: 'abc123-w2', [REDIS_DISCOVERY]: redis[REDIS_DISCOVERY] });
  t.true(redis[REDIS_DISCOVERY] instanceof PrimaryDiscovery);
  t.throws(() => w.cluster({ secret: 'x'.repeat(32), discovery: 'mdns' }), { instanceOf: TypeError, message: /does not fit workers/ });
});

test('each slot has its own store file, kept by the worker that replaces it', (t) => {
  const w = new WorkerContext(init(1), new FakeChannel());
  t.is(w.file('./data/hr-qos.db'), 'data/hr-qos.w1.db');
  t.is(w.file('/var/lib/sse/q.sqlite'), '/var/lib/sse/q.w1.sqlite');
  t.is(w.file('queue'), 'queue.w1');
  t.is(w.file(':memory:'), ':memory:');
  t.deepEqual(w.qos({ file: 'q.db', ttlMs: 5 }), { file: 'q.w1.db', ttlMs: 5 });
  t.deepEqual(w.qos({ redis: 'redis://127.0.0.1:1' }), { redis: 'redis://127.0.0.1:1' });
  t.is(new WorkerContext(init(2), new FakeChannel()).file('./data/hr-qos.db'), 'data/hr-qos.w2.db');
});
