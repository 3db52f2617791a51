import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { createHub, MemoryBus, StaticDiscovery, type Hub } from '../lib/index.js';
import { addressOf, eventually, SECRET } from './helpers/cluster.js';
import { sleep } from './helpers/server.js';

const self = { nodeId: 'self', group: 'test', host: '127.0.0.1', port: 4000 };

function recorder(): {
  log: string[];
  events: { found: (a: { host: string; port: number }) => void; lost: (a: { host: string; port: number }) => void };
} {
  const log: string[] = [];
  return {
    log,
    events: {
      found: (a) => void log.push(`found ${a.host} ${a.port}`),
      lost: (a) => void log.push(`lost ${a.host} ${a.port}`),
    },
  };
}

test('StaticDiscovery: a list set before start is only stored; after start, new addresses are found and removed ones lost', (t) => {
  const discovery = new StaticDiscovery(['127.0.0.1:4001']);
  const { log, events } = recorder();
  discovery.setPeers(['127.0.0.1:4000', '127.0.0.1:4002']);
  t.deepEqual(log, []);
  discovery.start(self, events);
  t.deepEqual(log, ['found 127.0.0.1 4002'], 'the latest list, without this node itself');

  log.length = 0;
  discovery.setPeers(['127.0.0.1:4000', '127.0.0.1:4002', '[::1]:4003', '[::1]:4003', '127.0.0.1:4004']);
  t.deepEqual(log, ['found ::1 4003', 'found 127.0.0.1 4004'], 'only what is new, duplicates once');
  log.length = 0;
  discovery.setPeers(['[::1]:4003']);
  t.deepEqual(log, ['lost 127.0.0.1 4002', 'lost 127.0.0.1 4004']);
  t.deepEqual(discovery.peers, ['[::1]:4003']);

  log.length = 0;
  discovery.close();
  discovery.setPeers([]);
  t.deepEqual(log, [], 'closed: no more events');
});

test('StaticDiscovery: a bad list is a TypeError and changes nothing', (t) => {
  const discovery = new StaticDiscovery();
  const { log, events } = recorder();
  discovery.start(self, events);
  discovery.setPeers(['127.0.0.1:4001']);
  log.length = 0;
  t.throws(() => discovery.setPeers('127.0.0.1:4002' as unknown as string[]), { instanceOf: TypeError, message: /array/ });
  t.throws(() => discovery.setPeers(['127.0.0.1:4002', 'no-port']), { instanceOf: TypeError, message: /host:port/ });
  t.throws(() => discovery.setPeers(['127.0.0.1:0']), { instanceOf: TypeError });
  t.throws(() => discovery.setPeers([4002 as unknown as string]), { instanceOf: TypeError });
  t.deepEqual(discovery.peers, ['127.0.0.1:4001']);
  t.deepEqual(log, []);
});

/** A push-only node on port 0; its address is known once it is ready. */
async function pushOnly(t: ExecutionContext, discovery?: StaticDiscovery): Promise<Hub> {
  const hub = createHub({
    name: 'test',
    cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: 1000, healthIntervalMs: 100, ...(discovery ? { discovery } : {}) },
  });
  t.teardown(() => hub.close());
  await hub.ready();
  return hub;
}

test('peers set after start: an added address becomes a peer, a removed one goes down at once and stays down', async (t) => {
  // a's list through a StaticDiscovery it keeps, b's through hub.cluster.setPeers: both reach the same list.
  const discovery = new StaticDiscovery();
  const a = await pushOnly(t, discovery);
  const b = await pushOnly(t);
  t.true(a.cluster!.address!.port > 0, 'the address is known after ready()');
  const ups: string[] = [];
  const downs: string[] = [];
  a.on('peer-up', (peer) => ups.push(peer.nodeId));
  a.on('peer-down', (nodeId) => downs.push(nodeId));

  discovery.setPeers([addressOf(b)]);
  b.cluster!.setPeers([addressOf(a)]);
  await eventually(() => a.cluster!.peers().length === 1 && b.cluster!.peers().length === 1, 'a and b see each other');
  t.is(a.cluster!.peers()[0]!.nodeId, b.cluster!.nodeId);
  t.true(ups.includes(b.cluster!.nodeId));

  // b still runs: only the list says it is gone.
  ups.length = 0;
  downs.length = 0;
  a.cluster!.setPeers([]);
  t.deepEqual(discovery.peers, []);
  t.deepEqual(a.cluster!.peers(), []);
  t.deepEqual(downs, [b.cluster!.nodeId]);
  await sleep(400);
  t.deepEqual(a.cluster!.peers(), [], 'the health check no longer probes it');
  t.deepEqual(ups, []);
});

/** A relay on loopback that connects on to `port` only after `delayMs`: a peer that answers slowly. */
async function slowRelay(t: ExecutionContext, port: number, delayMs: number): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    setTimeout(() => {
      if (client.destroyed) return;
      const upstream = net.connect(port, '127.0.0.1');
      sockets.add(upstream);
      upstream.on('error', () => client.destroy()).on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test('an address removed while its probe is under way does not become a peer when the answer comes', async (t) => {
  const a = await pushOnly(t);
  const b = await pushOnly(t);
  const ups: string[] = [];
  a.on('peer-up', (peer) => ups.push(peer.nodeId));
  a.cluster!.setPeers([await slowRelay(t, b.cluster!.address!.port, 200)]);
  a.cluster!.setPeers([]);
  await sleep(500);
  t.deepEqual(ups, []);
  t.deepEqual(a.cluster!.peers(), []);
});

test('hub.cluster.setPeers: a TypeError for a bad list or without static discovery', async (t) => {
  const hub = await pushOnly(t);
  t.throws(() => hub.cluster!.setPeers(['nonsense']), { instanceOf: TypeError, message: /host:port/ });
  const bus = createHub({ name: 'test', cluster: { transport: new MemoryBus().transport('a') } });
  t.teardown(() => bus.close());
  await bus.ready();
  t.is(bus.cluster!.address, undefined);
  t.throws(() => bus.cluster!.setPeers([]), { instanceOf: TypeError, message: /static discovery/ });
});
