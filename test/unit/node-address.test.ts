// Where a cluster node listens and what it announces, from an injected view of the host's
// network (no socket is opened).
import test from 'ava';
import type { NetworkInterfaceInfo } from 'node:os';
import { chooseNodeAddress, defaultRouteInterface, type HostNetwork } from '../../lib/cluster/node-address.js';

function v4(address: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: `${address}/24` };
}
function v6(address: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal, cidr: `${address}/64`, scopeid: 0 };
}
const lo = [v4('127.0.0.1', true), v6('::1', true)];

function network(interfaces: HostNetwork['interfaces'], defaultInterface?: string): HostNetwork {
  return { interfaces, defaultInterface };
}

test('by default it listens on every address and announces the default route interface, even when others come first', (t) => {
  const net = network({ lo, docker0: [v4('172.17.0.1')], eth0: [v6('fe80::1'), v4('192.0.2.7')], wlan0: [v4('198.51.100.9')] }, 'eth0');
  t.deepEqual(chooseNodeAddress({}, net, true), { bind: undefined, advertise: '192.0.2.7', multicast: '192.0.2.7', warning: undefined });
  t.is(chooseNodeAddress({ host: '0.0.0.0' }, net, true).bind, '0.0.0.0', 'a wildcard host is every address too');
  t.is(chooseNodeAddress({ host: '::' }, net, true).advertise, '192.0.2.7');
});

test('without a default route one routable interface is announced without a warning; link-local addresses do not count', (t) => {
  const net = network({ lo, eth0: [v4('192.0.2.7')], eth1: [v4('169.254.3.4')] });
  t.deepEqual(chooseNodeAddress({}, net, true), { bind: undefined, advertise: '192.0.2.7', multicast: '192.0.2.7', warning: undefined });
});

test('several interfaces and no default route: the first is announced, and the warning names them all and what to set', (t) => {
  const net = network({ lo, eth0: [v4('192.0.2.7')], eth1: [v4('198.51.100.9')] }, 'tun0');
  const choice = chooseNodeAddress({}, net, true);
  t.is(choice.advertise, '192.0.2.7');
  t.regex(choice.warning!, /eth0 \(192\.0\.2\.7\), eth1 \(198\.51\.100\.9\)/);
  t.regex(choice.warning!, /cluster\.interface/);
  t.regex(choice.warning!, /cluster\.advertise/);
  t.is(chooseNodeAddress({}, net, false).warning, undefined, 'a static peer list does not use the announced address: nothing to warn of');
  t.is(chooseNodeAddress({ advertise: '198.51.100.9' }, net, true).advertise, '198.51.100.9');
});

test('only loopback: 127.0.0.1 is announced (every peer is on this machine), and a discovery that publishes it says so', (t) => {
  const net = network({ lo });
  const choice = chooseNodeAddress({}, net, true);
  t.is(choice.advertise, '127.0.0.1');
  t.is(choice.multicast, '127.0.0.1');
  t.regex(choice.warning!, /no network interface but loopback/);
  t.regex(choice.warning!, /cluster\.interface/);
  t.is(chooseNodeAddress({}, net, false).warning, undefined);
});

test('a loopback host announced over discovery on a host with a LAN is a warning; on a loopback-only host it is not', (t) => {
  const lan = network({ lo, eth0: [v4('192.0.2.7')] }, 'eth0');
  const choice = chooseNodeAddress({ host: '127.0.0.1' }, lan, true);
  t.deepEqual([choice.bind, choice.advertise, choice.multicast], ['127.0.0.1', '127.0.0.1', '127.0.0.1']);
  t.regex(choice.warning!, /loopback address 127\.0\.0\.1/);
  t.is(chooseNodeAddress({ host: '127.0.0.1' }, lan, false).warning, undefined, 'static peers: loopback is what the user asked for');
  t.is(chooseNodeAddress({ host: '127.0.0.1' }, network({ lo }), true).warning, undefined);
  t.regex(chooseNodeAddress({ advertise: '127.0.0.2' }, lan, true).warning!, /loopback address 127\.0\.0\.2/);
});

test('a host address is where it listens and what it announces; advertise announces another one', (t) => {
  const net = network({ lo, eth0: [v4('192.0.2.7')] }, 'eth0');
  t.deepEqual(chooseNodeAddress({ host: '192.0.2.7' }, net, true), {
    bind: '192.0.2.7',
    advertise: '192.0.2.7',
    multicast: '192.0.2.7',
    warning: undefined,
  });
  t.deepEqual(chooseNodeAddress({ host: '192.0.2.7', advertise: '203.0.113.5' }, net, true), {
    bind: '192.0.2.7',
    advertise: '203.0.113.5',
    multicast: '192.0.2.7',
    warning: undefined,
  });
  t.is(chooseNodeAddress({ host: 'fd00::7' }, net, false).multicast, undefined, 'not a local IPv4 address: mDNS keeps the OS choice');
});

test('an interface by name: its IPv4 address is where it listens, what it announces and where mDNS runs', (t) => {
  const net = network({ lo, eth0: [v4('192.0.2.7')], eth1: [v6('fd00::1'), v4('198.51.100.9')] }, 'eth0');
  t.deepEqual(chooseNodeAddress({ interface: 'eth1' }, net, true), {
    bind: '198.51.100.9',
    advertise: '198.51.100.9',
    multicast: '198.51.100.9',
    warning: undefined,
  });
  t.regex(chooseNodeAddress({ interface: 'lo' }, net, true).warning!, /loopback/);
  t.throws(() => chooseNodeAddress({ interface: 'eth9' }, net, true), { instanceOf: TypeError, message: /"eth9".*interfaces: lo, eth0, eth1/ });
  t.throws(() => chooseNodeAddress({ interface: 'eth0', host: '192.0.2.7' }, net, true), { instanceOf: TypeError, message: /give one/ });
  t.throws(() => chooseNodeAddress({ advertise: '0.0.0.0' }, net, true), { instanceOf: TypeError, message: /cluster\.advertise/ });
  t.throws(() => chooseNodeAddress({ advertise: '' }, net, true), { instanceOf: TypeError, message: /cluster\.advertise/ });
});

test('the default route interface is read from /proc/net/route: the usable default with the lowest metric', (t) => {
  const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
  const row = (name: string, dest: string, flags: string, metric: number, mask: string): string =>
    `${name}\t${dest}\t0102A8C0\t${flags}\t0\t0\t${metric}\t${mask}\t0\t0\t0\n`;
  t.is(defaultRouteInterface(header + row('eth0', '0002A8C0', '0001', 0, '00FFFFFF')), undefined, 'no default route');
  t.is(defaultRouteInterface(header + row('wlan0', '00000000', '0003', 600, '00000000') + row('eth0', '00000000', '0003', 100, '00000000')), 'eth0');
  t.is(defaultRouteInterface(header + row('eth0', '00000000', '0002', 100, '00000000') + row('wlan0', '00000000', '0003', 600, '00000000')), 'wlan0');
  t.is(defaultRouteInterface(''), undefined);
});
