// What a LAN cluster node announces and whom it refuses, over real HTTP on loopback. The
// host's network is injected where the choice depends on it; which address is chosen on a
// real LAN is shown by test/lan/.
import test, { type ExecutionContext } from 'ava';
import type { NetworkInterfaceInfo } from 'node:os';
import { createTransport } from '../lib/cluster/cluster-options.js';
import type { HostNetwork } from '../lib/cluster/node-address.js';
import { HttpTransport } from '../lib/cluster/http-transport.js';
import {
  createHub,
  SseNodeAddressError,
  SsePeerProtocolError,
  StaticDiscovery,
  type Discovery,
  type DiscoveryEvents,
  type Hub,
  type SelfDescription,
} from '../lib/index.js';
import { addressOf, eventually, recordingProxy, SECRET } from './helpers/cluster.js';

const iface = (address: string, internal: boolean): NetworkInterfaceInfo => ({
  address,
  netmask: '255.255.255.0',
  family: 'IPv4',
  mac: '00:00:00:00:00:00',
  internal,
  cidr: `${address}/24`,
});
const withLan: HostNetwork = { interfaces: { lo: [iface('127.0.0.1', true)], eth0: [iface('192.0.2.7', false)] }, defaultInterface: 'eth0' };

/** A discovery that publishes this node's address somewhere (here: only records what it was told). */
class Publishing implements Discovery {
  self: SelfDescription | undefined;
  start(self: SelfDescription, _events: DiscoveryEvents): void {
    this.self = self;
  }
  close(): void {}
}

async function started(t: ExecutionContext, transport: HttpTransport, protocol = 2): Promise<unknown[]> {
  const errors: unknown[] = [];
  transport.on('error', (err) => errors.push(err));
  t.teardown(() => transport.close());
  await transport.start(() => Promise.resolve(null), { nodeId: transport.nodeId, group: 'test', protocol });
  return errors;
}

function http(options: Parameters<typeof createTransport>[0], network: HostNetwork = withLan): HttpTransport {
  const { transport } = createTransport({ secret: SECRET, ...options }, 'test', { network: () => network });
  if (!(transport instanceof HttpTransport)) throw new Error('expected the HTTP transport');
  return transport;
}

test('a loopback address published to a LAN is reported once, with what to set; the node still starts', async (t) => {
  const discovery = new Publishing();
  const errors = await started(t, http({ host: '127.0.0.1', discovery }));
  t.is(discovery.self?.host, '127.0.0.1');
  t.is(errors.length, 1);
  t.true(errors[0] instanceof SseNodeAddressError);
  t.is((errors[0] as SseNodeAddressError).code, 'ERR_SSE_NODE_ADDRESS');
  t.regex((errors[0] as Error).message, /cluster\.interface or cluster\.advertise/);
});

test('advertise is what discovery and cluster.address show; a static list is not published, so loopback is no warning', async (t) => {
  const discovery = new Publishing();
  const a = http({ host: '127.0.0.1', advertise: '192.0.2.50', discovery });
  t.deepEqual(await started(t, a), []);
  t.is(discovery.self?.host, '192.0.2.50');
  t.is(a.address.host, '192.0.2.50');
  t.true(a.address.port > 0);
  t.deepEqual(await started(t, http({ host: '127.0.0.1', discovery: new StaticDiscovery() })), []);
});

test('option mistakes are TypeErrors at once: mDNS needs an IPv4 address to announce, an interface needs an address', (t) => {
  t.throws(() => http({ discovery: 'mdns', host: '127.0.0.1', advertise: 'node1.example' }), { instanceOf: TypeError, message: /IPv4/ });
  t.throws(() => http({ interface: 'eth9' }), { instanceOf: TypeError, message: /eth9/ });
  t.throws(() => http({ interface: 'eth0', host: '127.0.0.1' }), { instanceOf: TypeError, message: /give one/ });
  t.throws(() => createTransport({ redis: 'redis://127.0.0.1:1', advertise: '192.0.2.1' }, 'test'), {
    instanceOf: TypeError,
    message: /cluster\.advertise/,
  });
});

test('a node of the group that speaks another protocol version is never a peer, and is reported once however often it is probed', async (t) => {
  const other = http({ host: '127.0.0.1', discovery: new StaticDiscovery() });
  await started(t, other, 3);
  const proxy = await recordingProxy(t, other.address.port);
  const discovery = new StaticDiscovery([`127.0.0.1:${proxy.port}`]);
  const self = http({ host: '127.0.0.1', discovery, healthIntervalMs: 30 });
  const errors = await started(t, self);
  const probes = (): number => proxy.requests().toString('latin1').split('POST /rpc').length - 1;
  await eventually(() => probes() >= 4, 'several probes');
  t.deepEqual(self.peers(), []);
  t.deepEqual(self.unreachable(), []);
  t.is(errors.length, 1);
  t.true(errors[0] instanceof SsePeerProtocolError);
  t.is((errors[0] as SsePeerProtocolError).code, 'ERR_SSE_PEER_PROTOCOL');
  t.regex((errors[0] as Error).message, new RegExp(`Node ${other.nodeId} at 127\\.0\\.0\\.1:${proxy.port} speaks cluster protocol 3, this node 2`));
});

test('a node that moved (same id, another address) stays up while its old address fails: one peer, no peer-down', async (t) => {
  const start = async (nodeId: string, discovery?: StaticDiscovery): Promise<Hub> => {
    const hub = createHub({
      name: 'test',
      cluster: { secret: SECRET, host: '127.0.0.1', nodeId, healthIntervalMs: 30, ...(discovery ? { discovery } : {}) },
    });
    t.teardown(() => hub.close());
    await hub.ready();
    return hub;
  };
  const discovery = new StaticDiscovery();
  const a = await start('a', discovery);
  const downs: string[] = [];
  a.on('peer-down', (nodeId) => downs.push(nodeId));
  const before = await start('moving');
  const old = await recordingProxy(t, before.cluster!.address!.port);
  const now = await start('moving');
  discovery.setPeers([`127.0.0.1:${old.port}`, addressOf(now)]);
  await eventually(() => a.cluster!.peers().some((p) => p.nodeId === 'moving'), 'the node up');
  // It is gone from the old address: every probe there fails from now on.
  await before.close();
  const failedProbes = (): number => old.requests().toString('latin1').split('POST /rpc').length - 1;
  const probesAtClose = failedProbes();
  await eventually(() => failedProbes() >= probesAtClose + 4, 'failed probes of the old address');
  t.deepEqual(downs, []);
  t.deepEqual(
    a.cluster!.peers().map((p) => p.nodeId),
    ['moving'],
  );
});
