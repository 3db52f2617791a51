import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { createHub, DnsDiscovery, SseDiscoveryError, type DnsOptions, type Hub, type SsePluginOptions } from '../lib/index.js';
import { eventually, SECRET } from './helpers/cluster.js';
import { DnsServer } from './helpers/dns-server.js';
import { startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

type ClusterOpts = NonNullable<SsePluginOptions['cluster']>;

// Nodes share the event loop with the file's other tests: keep the peer timeout generous.
const TIMEOUT_MS = 3000;
const SRV = '_cluster._tcp.sse.test';

const self = { nodeId: 'self', group: 'test', host: '127.0.0.1', port: 4000 };

/** found / lost / error as lines, in order. */
function recorder(): { log: string[]; errors: unknown[]; events: Parameters<DnsDiscovery['start']>[1] } {
  const log: string[] = [];
  const errors: unknown[] = [];
  return {
    log,
    errors,
    events: {
      found: (a) => void log.push(`found ${a.host} ${a.port}`),
      lost: (a) => void log.push(`lost ${a.host} ${a.port}`),
      error: (err) => void errors.push(err),
    },
  };
}

/** A started DnsDiscovery that resolves only when the test says so (`refresh`). */
function discovery(t: ExecutionContext, dns: DnsServer, options: Partial<DnsOptions> = {}) {
  const d = new DnsDiscovery({ name: 'sse.test', servers: [dns.address], intervalMs: 600_000, ...options });
  const r = recorder();
  d.start(self, r.events);
  t.teardown(() => d.close());
  return { d, ...r };
}

test('A/AAAA: the answer becomes peers on the given port, this node skipped; what leaves the answer is lost', async (t) => {
  const dns = await DnsServer.start(t);
  dns.set('sse.test', { a: ['127.0.0.1', '127.0.0.2'], aaaa: ['::1'] });
  const { d, log, errors } = discovery(t, dns, { port: 4000 });
  await d.refresh();
  t.deepEqual(log, ['found 127.0.0.2 4000', 'found ::1 4000'], '127.0.0.1:4000 is this node');
  t.deepEqual(d.peers, ['127.0.0.2:4000', '[::1]:4000']);

  log.length = 0;
  dns.set('sse.test', { a: ['127.0.0.1', '127.0.0.3'] });
  await d.refresh();
  t.deepEqual(log, ['lost 127.0.0.2 4000', 'lost ::1 4000', 'found 127.0.0.3 4000']);

  log.length = 0;
  await d.refresh();
  t.deepEqual(log, [], 'the same answer: nothing new');

  dns.set('sse.test', undefined);
  await d.refresh();
  t.deepEqual(log, ['lost 127.0.0.3 4000'], 'NXDOMAIN is an answer: no peers');
  t.deepEqual(errors, []);
});

test('A/AAAA without a port: the peers listen on this node own port', async (t) => {
  const dns = await DnsServer.start(t);
  dns.set('sse.test', { a: ['127.0.0.1', '127.0.0.5'] });
  const { d, log } = discovery(t, dns);
  await d.refresh();
  t.deepEqual(log, ['found 127.0.0.5 4000']);
});

test('SRV: each target resolved, with the port of its record; a target without address gives nothing', async (t) => {
  const dns = await DnsServer.start(t);
  dns.set(SRV, {
    srv: [
      { port: 4000, target: 'self.sse.test' },
      { port: 4001, target: 'b.sse.test' },
      { port: 4002, target: 'c.sse.test' },
      { port: 4003, target: 'gone.sse.test' },
      { port: 4004, target: '127.0.0.9' },
    ],
  });
  dns.set('self.sse.test', { a: ['127.0.0.1'] });
  dns.set('b.sse.test', { a: ['127.0.0.1'] });
  dns.set('c.sse.test', { aaaa: ['::1'] });
  const { d, log, errors } = discovery(t, dns, { name: SRV, srv: true });
  await d.refresh();
  t.deepEqual(log.sort(), ['found 127.0.0.1 4001', 'found 127.0.0.9 4004', 'found ::1 4002']);
  t.deepEqual(errors, []);
});

test('a failing DNS keeps the last peers and reports once per failure streak; it recovers by itself', async (t) => {
  const dns = await DnsServer.start(t);
  dns.set('sse.test', { a: ['127.0.0.2'] });
  const { d, log, errors } = discovery(t, dns, { port: 4000 });
  await d.refresh();
  t.deepEqual(log, ['found 127.0.0.2 4000']);

  log.length = 0;
  dns.mode = 'servfail';
  await d.refresh();
  await d.refresh();
  t.deepEqual(log, [], 'nothing lost');
  t.deepEqual(d.peers, ['127.0.0.2:4000']);
  t.is(errors.length, 1, 'one report for the streak');
  const err = errors[0] as SseDiscoveryError;
  t.true(err instanceof SseDiscoveryError);
  t.is(err.code, 'ERR_SSE_DISCOVERY_FAILED');
  t.regex(err.message, /sse\.test.*keeping the 1 known peer/);

  dns.mode = 'silent';
  await d.refresh();
  t.is(errors.length, 2, 'a different failure (timeout) is reported');
  t.is((errors[1] as { cause?: { code?: string } }).cause?.code, 'ETIMEOUT');
  t.deepEqual(log, []);

  dns.mode = 'answer';
  dns.set('sse.test', { a: ['127.0.0.3'] });
  await d.refresh();
  t.deepEqual(log, ['lost 127.0.0.2 4000', 'found 127.0.0.3 4000']);
  dns.mode = 'servfail';
  await d.refresh();
  t.is(errors.length, 3, 'a new streak is reported again');
});

test('resolutions never overlap nor spin: a failing server is asked about once per interval', async (t) => {
  const dns = await DnsServer.start(t);
  dns.mode = 'servfail';
  const d = new DnsDiscovery({ name: 'sse.test', servers: [dns.address], intervalMs: 50, port: 4000 });
  const { events, errors } = recorder();
  d.start(self, events);
  t.teardown(() => d.close());
  await eventually(() => dns.queries >= 10, 'several resolutions');
  await Promise.all([d.refresh(), d.refresh(), d.refresh()]);
  const started = Date.now();
  const before = dns.queries;
  await eventually(() => Date.now() - started >= 500, 'half a second');
  // Two questions (A, AAAA) per resolution, c-ares may retry each once: 500 ms / 50 ms at most ~40. A loop would give thousands.
  t.true(dns.queries - before < 120, `${dns.queries - before} queries in 500 ms`);
  t.is(errors.length, 1);
  await d.close();
  const closed = dns.queries;
  await new Promise((r) => setTimeout(r, 200));
  t.is(dns.queries, closed, 'closed: no more queries');
});

test('close() during a resolution that hangs returns at once and reports nothing', async (t) => {
  const dns = await DnsServer.start(t);
  dns.mode = 'silent';
  const { d, log, errors } = discovery(t, dns, { port: 4000 });
  await eventually(() => dns.queries > 0, 'the first query is under way');
  const started = Date.now();
  await d.close();
  // Not a speed check: the resolver would give up only after about 3 s (1 s, then a 2 s retry);
  // close cancels the queries instead of waiting for that, which any margin below 3 s shows.
  t.true(Date.now() - started < 2500, `close took ${Date.now() - started} ms`);
  t.deepEqual(log, []);
  t.deepEqual(errors, []);
  await d.refresh();
  t.deepEqual(log, [], 'closed: refresh does nothing');
});

test('bad DNS options are TypeErrors at once', (t) => {
  const bad: unknown[] = [
    undefined,
    {},
    { name: '' },
    { name: 'x', port: 0 },
    { name: 'x', port: 70000 },
    { name: 'x', srv: 'yes' },
    { name: 'x', intervalMs: 0 },
    { name: 'x', intervalMs: Infinity },
    { name: 'x', servers: [] },
    { name: 'x', servers: ['not an ip'] },
    { name: 'x', servers: '127.0.0.1' },
  ];
  for (const options of bad) t.throws(() => new DnsDiscovery(options as DnsOptions), { instanceOf: TypeError }, JSON.stringify(options));
  t.throws(() => createHub({ name: 'test', cluster: { secret: SECRET, host: '127.0.0.1', discovery: 'dns' } }), {
    instanceOf: TypeError,
    message: /cluster\.dns/,
  });
  t.throws(() => createHub({ name: 'test', cluster: { secret: SECRET, host: '127.0.0.1', discovery: 'dns', dns: { name: 'sse.test' } } }), {
    instanceOf: TypeError,
    message: /A\/AAAA records carry no port/,
  });
  t.notThrows(() =>
    createHub({ name: 'test', cluster: { secret: SECRET, host: '127.0.0.1', discovery: 'dns', dns: { name: 'sse.test' }, port: 4999 } }).close(),
  );
  t.notThrows(() =>
    createHub({ name: 'test', cluster: { secret: SECRET, host: '127.0.0.1', discovery: 'dns', dns: { name: SRV, srv: true } } }).close(),
  );
  // The Redis engine finds its nodes through Redis: DNS settings there are a mistake.
  t.throws(() => createHub({ name: 'test', cluster: { redis: 'redis://127.0.0.1:1', dns: { name: 'sse.test' } } }), {
    instanceOf: TypeError,
    message: /cluster\.dns/,
  });
});

// ---- real nodes --------------------------------------------------------------------------

/** A plugin node on random ports, discovering its peers through `dns`'s SRV records; `errors` is what reaches `app.on('error')`. */
async function dnsNode(t: ExecutionContext, dns: DnsServer, cluster: Partial<ClusterOpts>): Promise<StartedPlugin> {
  const started = await startPlugin(t, {
    cluster: {
      secret: SECRET,
      host: '127.0.0.1',
      timeoutMs: TIMEOUT_MS,
      healthIntervalMs: 100,
      discovery: 'dns',
      dns: { name: SRV, srv: true, servers: [dns.address], intervalMs: 100 },
      ...cluster,
    },
  });
  await started.plugin.hub.ready();
  // The plugin reports to its Koa app once it served a request (before that, to the console).
  await (await fetch(`${started.base}/connect`)).text();
  return started;
}

function nodeIds(hub: Hub): string[] {
  return hub
    .cluster!.peers()
    .map((p) => p.nodeId)
    .sort();
}

test('three HTTP nodes find each other through SRV records: a send crosses, a removed record is a peer down, a dead DNS keeps the peers', async (t) => {
  const dns = await DnsServer.start(t);
  const nodes = [await dnsNode(t, dns, {}), await dnsNode(t, dns, {})];
  const hubs = nodes.map((n) => n.plugin.hub);
  const ups = new Map<Hub, string[]>(hubs.map((h) => [h, []]));
  for (const h of hubs) h.on('peer-up', (peer) => ups.get(h)!.push(peer.nodeId));

  // Ports are random: the records are published once the nodes listen, as a headless service does for ready pods.
  const publish = (list: Hub[]): void => {
    dns.set(SRV, { srv: list.map((h, i) => ({ port: h.cluster!.address!.port, target: `node${i}.sse.test` })) });
    list.forEach((h, i) => dns.set(`node${i}.sse.test`, { a: [h.cluster!.address!.host] }));
  };
  publish(hubs);
  const [a, b] = hubs as [Hub, Hub];
  await eventually(() => a.cluster!.peers().length === 1 && b.cluster!.peers().length === 1, 'a and b see each other');

  // A third node joins: the others learn of it from the next answer.
  const c = await dnsNode(t, dns, {});
  nodes.push(c);
  hubs.push(c.plugin.hub);
  ups.set(c.plugin.hub, []);
  c.plugin.hub.on('peer-up', (peer) => ups.get(c.plugin.hub)!.push(peer.nodeId));
  publish(hubs);
  for (const h of hubs) await eventually(() => h.cluster!.peers().length === 2, 'every node sees two peers');
  t.deepEqual(ups.get(a), [b.cluster!.nodeId, c.plugin.hub.cluster!.nodeId], 'peer-up for each, once');
  t.deepEqual(nodeIds(c.plugin.hub), [a.cluster!.nodeId, b.cluster!.nodeId].sort());

  // A send on node a reaches a user on node c.
  const onC = await RawStream.open(t, `${c.base}/connect?access-token=7`);
  t.is(await a.sendByUserId(7, 'bell', { via: 'dns' }), 1);
  t.deepEqual(JSON.parse((await onC.next('bell')).data), { via: 'dns' });

  // c's record leaves the answer (its pod went away): a and b drop it at the next resolution, though it still runs.
  const downs: string[] = [];
  a.on('peer-down', (nodeId) => downs.push(nodeId));
  publish([a, b]);
  await eventually(() => a.cluster!.peers().length === 1 && b.cluster!.peers().length === 1, 'c gone from a and b');
  t.deepEqual(downs, [c.plugin.hub.cluster!.nodeId]);
  t.is(await a.sendByUserId(7, 'bell', 'not sent'), 0, 'c is no longer asked');

  // The DNS server dies: a and b keep each other and report the failure; nothing crashes.
  await dns.stop();
  await eventually(() => nodes[0]!.errors.length > 0 && nodes[1]!.errors.length > 0, 'the failure is reported');
  for (const n of nodes.slice(0, 2)) {
    t.true(
      n.errors.every((e) => (e as { code?: string }).code === 'ERR_SSE_DISCOVERY_FAILED'),
      String(n.errors),
    );
    t.is(n.errors.length, 1, 'once per failure streak, not once per interval');
  }
  t.deepEqual(nodeIds(a), [b.cluster!.nodeId]);
  t.deepEqual(nodeIds(b), [a.cluster!.nodeId]);
  const onB = await RawStream.open(t, `${nodes[1]!.base}/connect?access-token=8`);
  t.is(await a.sendByUserId(8, 'bell', 'still'), 1);
  t.is((await onB.next('bell')).data, 'still');
});

/** A port free on 127.0.0.2 to 127.0.0.4 at once, the way every pod of a service listens on the same port. */
async function sharedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.2', () => resolve()));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

test('A records and one fixed port, as a Kubernetes headless service gives: push-only nodes on 127.0.0.2-4 find each other', async (t) => {
  const dns = await DnsServer.start(t);
  const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  dns.set('sse.test', { a: hosts });
  let hubs: Hub[] = [];
  for (let attempt = 0; ; attempt++) {
    const port = await sharedPort();
    hubs = hosts.map((host) =>
      createHub({
        name: 'test',
        cluster: {
          secret: SECRET,
          timeoutMs: TIMEOUT_MS,
          healthIntervalMs: 100,
          host,
          port,
          discovery: 'dns',
          dns: { name: 'sse.test', servers: [dns.address], intervalMs: 100 },
        },
      }),
    );
    for (const h of hubs) t.teardown(() => h.close());
    const started = await Promise.allSettled(hubs.map((h) => h.ready()));
    if (started.every((s) => s.status === 'fulfilled')) break;
    // Another process took the port between the probe and the listen: try another.
    if (attempt === 4) throw (started.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
    await Promise.all(hubs.map((h) => h.close()));
  }
  for (const h of hubs) await eventually(() => h.cluster!.peers().length === 2, 'each node sees the two others');
  t.deepEqual(
    hubs[0]!
      .cluster!.peers()
      .map((p) => p.nodeId)
      .sort(),
    [hubs[1]!.cluster!.nodeId, hubs[2]!.cluster!.nodeId].sort(),
  );

  dns.set('sse.test', { a: hosts.slice(0, 2) });
  await eventually(() => hubs[0]!.cluster!.peers().length === 1 && hubs[1]!.cluster!.peers().length === 1, 'the third is gone');
});
