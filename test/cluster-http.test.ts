import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { createHub, ssePlugin, SseBadRequestError, SsePeerError, type ClusterRequest, type SsePluginOptions } from '../lib/index.js';
import { addressOf, eventually, introduce, recordingProxy, SECRET } from './helpers/cluster.js';
import { freePort } from './helpers/redis-server.js';
import { startPlugin, tokenUser, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

type ClusterOpts = NonNullable<SsePluginOptions['cluster']>;

// Every node of a file shares one event loop with the file's other tests, which run at the
// same time: on a busy machine the first send to a peer took up to 1.2 s, and a shorter
// timeout failed healthy peers. A dead peer must still cost at most this long (killed-node test).
const TIMEOUT_MS = 3000;

async function node(t: ExecutionContext, cluster: ClusterOpts): Promise<StartedPlugin> {
  const started = await startPlugin(t, { cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: TIMEOUT_MS, healthIntervalMs: 100, ...cluster } });
  await started.plugin.hub.ready();
  return started;
}

/** Three nodes on loopback, each on port 0, then told each other's addresses (static list). */
async function threeNodes(t: ExecutionContext, extra: Partial<ClusterOpts> = {}) {
  const nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await node(t, extra));
  const peers = introduce(nodes.map((n) => n.plugin.hub));
  for (const n of nodes) await eventually(() => n.plugin.hub.cluster!.peers().length === 2, 'peers up');
  return { nodes, peers };
}

test('real nodes over loopback: a send on A reaches a user on C, queries merge', async (t) => {
  const {
    nodes: [a, b, c],
  } = await threeNodes(t);
  const onC = await RawStream.open(t, `${c!.base}/connect?access-token=7@1`);
  await RawStream.open(t, `${b!.base}/connect?access-token=7@1`);
  t.is(await a!.plugin.hub.sendByUserId(7, 'bell', { n: 1 }), 2);
  t.deepEqual(JSON.parse((await onC.next('bell')).data), { n: 1 });
  t.deepEqual(await a!.plugin.hub.getUserIds(), ['7']);
  t.is(await a!.plugin.hub.getConnectionCount(), 2);
});

test('a killed node costs at most the timeout, is reported, and rejoins when back', async (t) => {
  const {
    nodes: [a, b, c],
  } = await threeNodes(t);
  // a knows b by a relay's address, which stays the same when b comes back on another port.
  const relay = await recordingProxy(t, b!.plugin.hub.cluster!.address!.port);
  a!.plugin.hub.cluster!.setPeers([addressOf(c!.plugin.hub), `127.0.0.1:${relay.port}`]);
  await eventually(() => a!.plugin.hub.cluster!.peers().length === 2, 'a sees b through the relay');
  await RawStream.open(t, `${b!.base}/connect?access-token=1`);
  await b!.plugin.close();
  const started = Date.now();
  const detailed = await a!.plugin.hub.queryDetailed('userIds');
  t.true(Date.now() - started < TIMEOUT_MS + 500);
  // Either already known down (health check) or timed out: never a silent success with b's users.
  t.deepEqual(detailed.value, []);
  await eventually(() => a!.plugin.hub.cluster!.peers().length === 1, 'b down');
  const back = await node(t, {});
  relay.retarget(back.plugin.hub.cluster!.address!.port);
  // No new list: the health check retries the known address until b answers there again.
  await eventually(() => a!.plugin.hub.cluster!.peers().length === 2, 'b back');
  await RawStream.open(t, `${back.base}/connect?access-token=2`);
  t.deepEqual(await a!.plugin.hub.getUserIds(), ['2']);
});

test('a push-only member (no HTTP server) can send and query', async (t) => {
  const {
    nodes: [a],
    peers,
  } = await threeNodes(t);
  const pusher = createHub({ name: 'test', cluster: { secret: SECRET, host: '127.0.0.1', peers, timeoutMs: TIMEOUT_MS, healthIntervalMs: 100 } });
  t.teardown(() => pusher.close());
  await pusher.ready();
  await eventually(() => pusher.cluster!.peers().length === 3, 'pusher sees 3 peers');
  const onA = await RawStream.open(t, `${a!.base}/connect?access-token=5`);
  t.true(await pusher.isOnline(5));
  t.is(await pusher.sendByUserId(5, 'from-pusher', 'hi'), 1);
  t.is((await onA.next('from-pusher')).data, 'hi');
});

test('the cluster refuses to start without a secret of at least 32 bytes', (t) => {
  t.throws(() => ssePlugin('/x', { authenticate: tokenUser, cluster: {} }), { instanceOf: TypeError, message: /secret/ });
  t.throws(() => ssePlugin('/x', { authenticate: tokenUser, cluster: { secret: 'short' } }), { instanceOf: TypeError, message: /32 bytes/ });
});

/** Builds a request to a node's internal endpoint, signed with `secret` as a peer would. */
function signed(secret: string, group: string, body: Buffer, opts: { time?: number; nonce?: string; to?: string } = {}) {
  const mac = Buffer.from(hkdfSync('sha256', Buffer.from(secret), Buffer.from('koa-sse-server cluster v1'), `mac:${group}`, 32));
  const time = String(opts.time ?? Date.now());
  const nonce = opts.nonce ?? randomBytes(16).toString('hex');
  const to = opts.to ?? '';
  const digest = createHash('sha256').update(body).digest('hex');
  const sig = createHmac('sha256', mac).update(`POST\n/rpc\n${time}\n${nonce}\nattacker\n${to}\n${body.length}\n${digest}`).digest('hex');
  return { 'x-sse-node': 'attacker', 'x-sse-to': to, 'x-sse-time': time, 'x-sse-nonce': nonce, 'x-sse-digest': digest, 'x-sse-signature': sig };
}

function post(port: number, headers: Record<string, string>, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/rpc', method: 'POST', headers: { ...headers, 'content-length': body.length } },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('unsigned, wrongly signed, stale, replayed and tampered requests are refused and do nothing', async (t) => {
  // Without encryption, so that a correctly signed forged request would be readable: only the signature protects it.
  const {
    nodes: [a],
  } = await threeNodes(t, { encrypt: false });
  const onA = await RawStream.open(t, `${a!.base}/connect?access-token=9`);
  const port = a!.plugin.hub.cluster!.address!.port;
  const body = Buffer.from(JSON.stringify({ type: 'send', items: [{ kind: 'all', keys: [''], event: 'injected', data: 'x', listening: false }] }));
  t.is(await post(port, {}, body), 401, 'unsigned');
  t.is(await post(port, signed('another-secret-0123456789-abcdefghijkl', 'test', body), body), 401, 'wrong secret');
  t.is(await post(port, signed(SECRET, 'test', body, { time: Date.now() - 60_000 }), body), 401, 'stale');
  const tampered = Buffer.from(body.toString().replace('injected', 'tampered'));
  t.is(await post(port, signed(SECRET, 'test', body), tampered), 401, 'tampered');
  t.is(await post(port, signed(SECRET, 'other-group', body), body), 401, 'other group');
  const self = a!.plugin.hub.cluster!.nodeId;
  t.is(await post(port, signed(SECRET, 'test', body, { to: 'another-node' }), body), 401, 'signed for another node');
  t.is(await post(port, signed(SECRET, 'test', body, { to: '' }), body), 401, 'no recipient: only a hello may');
  // A correctly signed request works once (proves the test can tell), and its replay is refused.
  const headers = signed(SECRET, 'test', body, { to: self });
  t.is(await post(port, headers, body), 200);
  await onA.next('injected');
  t.is(await post(port, headers, body), 401, 'replayed');
  await a!.plugin.hub.sendByUserId(9, 'end', 1);
  await onA.next('end');
  t.is(onA.named('injected').length, 1);
  t.is(onA.named('tampered').length, 0);
});

test('traffic on the wire between nodes does not show message bodies', async (t) => {
  for (const encrypt of [true, false]) {
    const b = await node(t, { encrypt });
    // a reaches b only through the proxy.
    const proxy = await recordingProxy(t, b.plugin.hub.cluster!.address!.port);
    const a = await node(t, { peers: [`127.0.0.1:${proxy.port}`], encrypt });
    await eventually(() => a.plugin.hub.cluster!.peers().length === 1, 'a sees b');
    const onB = await RawStream.open(t, `${b.base}/connect?access-token=3`);
    const secretText = `salary-offer-${randomBytes(6).toString('hex')}`;
    t.is(await a.plugin.hub.sendByUserId(3, 'offer', { secretText }), 1);
    t.is(JSON.parse((await onB.next('offer')).data).secretText, secretText);
    const wire = proxy.captured().toString('latin1');
    t.true(wire.includes('POST /rpc'), 'the proxy saw the traffic');
    t.is(wire.includes(secretText), !encrypt, encrypt ? 'encrypted: body not visible' : 'plain: body visible (control)');
    t.false(wire.includes(SECRET));
    await a.plugin.close();
    await b.plugin.close();
  }
});

test('an endpoint that does not know the secret is never a peer and receives no payload', async (t) => {
  const received: Buffer[] = [];
  const rogue = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => {
        received.push(Buffer.concat(chunks));
        // Answers like a node would, but cannot sign: it does not know the secret.
        res.writeHead(200, { 'x-sse-node': 'rogue', 'x-sse-signature': '0'.repeat(64) }).end('{"nodeId":"rogue","group":"test","protocol":1}');
      });
  });
  await new Promise<void>((resolve) => rogue.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => rogue.close(() => resolve())));
  const roguePort = (rogue.address() as { port: number }).port;
  const a = await node(t, { peers: [`127.0.0.1:${roguePort}`] });
  await eventually(() => received.length >= 2, 'probes');
  t.deepEqual(a.plugin.hub.cluster!.peers(), []);
  const text = `payload-${randomBytes(6).toString('hex')}`;
  t.is(await a.plugin.hub.sendAll('x', text), 0);
  await a.plugin.hub.getUserIds();
  t.false(Buffer.concat(received).toString('latin1').includes(text));
});

test('durable across nodes: sent on A while offline, A restarts, the user connects to B, acks, A deletes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = `${dir}/a.db`;
  const start = async (qosFile?: string) => {
    const started = await startPlugin(t, {
      cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: TIMEOUT_MS, healthIntervalMs: 100 },
      ...(qosFile ? { qos: { file: qosFile } } : {}),
    });
    await started.plugin.hub.ready();
    return started;
  };
  const a1 = await start(file);
  const sent = await a1.plugin.hub.qos.sendByUserId(11, 'offer', { candidate: 'Grace' });
  await a1.plugin.close();
  const a2 = await start(file);
  const b = await start();
  introduce([a2.plugin.hub, b.plugin.hub]);
  await eventually(() => b.plugin.hub.cluster!.peers().length === 1, 'b sees a');
  t.is(a2.plugin.hub.qos.pendingCount({ userId: 11 }), 1);
  const tab = await RawStream.open(t, `${b.base}/connect?access-token=11&ack=1`);
  t.is((await tab.next('offer')).id, sent.messageId);
  const res = (await (
    await fetch(`${b.base}/connect/ack.do?access-token=11`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ connectionId: tab.connectionId, ids: [sent.messageId] }),
    })
  ).json()) as { data: unknown };
  t.deepEqual(res.data, { acked: 1 });
  t.is(a2.plugin.hub.qos.pendingCount({ userId: 11 }), 0);
});

/** The HTTP requests in a raw byte capture of one direction of a connection (Content-Length bodies). */
function parseRequests(raw: Buffer): { head: string; headers: Record<string, string>; body: Buffer }[] {
  const out: { head: string; headers: Record<string, string>; body: Buffer }[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const [head, ...lines] = raw.subarray(at, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    out.push({ head: head!, headers, body: raw.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return out;
}

test('cross-node replay: a request captured on its way from A to B is refused by C, by A itself and by B again', async (t) => {
  // Unencrypted, so that the test can pick the send out of the capture (encryption does not matter to the attack).
  const {
    nodes: [a, b, c],
  } = await threeNodes(t, { encrypt: false });
  const proxy = await recordingProxy(t, b!.plugin.hub.cluster!.address!.port);
  a!.plugin.hub.cluster!.setPeers([addressOf(c!.plugin.hub), `127.0.0.1:${proxy.port}`]);
  await eventually(() => a!.plugin.hub.cluster!.peers().length === 2, 'a sees b through the proxy');
  const streams = await Promise.all([a, b, c].map((n) => RawStream.open(t, `${n!.base}/connect?access-token=5`)));
  t.is(await a!.plugin.hub.sendAll('bcast', 'once'), 3);
  for (const s of streams) await s.next('bcast');
  const captured = parseRequests(proxy.requests()).find((r) => r.body.toString('utf8').includes('"bcast"'));
  t.truthy(captured, 'the send from a to b was captured');
  const headers = { ...captured!.headers };
  delete headers['host'];
  delete headers['connection'];
  for (const target of [c, a, b]) t.is(await post(target!.plugin.hub.cluster!.address!.port, headers, captured!.body), 401);
  await a!.plugin.hub.sendAll('end', 1);
  for (const s of streams) {
    await s.next('end');
    t.is(s.named('bcast').length, 1, 'delivered once, never again through a replay');
  }
});

test('a node back after being marked down is seen up by the peer it first talks to before that peer answers it: a durable send made right after reaches its stream', async (t) => {
  // A checks its peers every 4 s and gives up on one after one failed check: once it marked B
  // down, it would not look at B again for 4 s on its own. B comes back (same id, same port)
  // and asks A at once (its stream's pull): A must see it up before answering, or the second
  // send, made while A still held B down, skips B although B already pulled (it then waited
  // for the user's next reconnect).
  const dir = mkdtempSync(join(tmpdir(), 'sse-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const portB = await freePort();
  const a = await startPlugin(t, {
    cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: TIMEOUT_MS, healthIntervalMs: 4000, healthFailures: 1 },
    qos: { file: join(dir, 'a.db') },
  });
  await a.plugin.hub.ready();
  const startB = async (): Promise<StartedPlugin> => {
    const b = await startPlugin(t, {
      cluster: {
        secret: SECRET,
        host: '127.0.0.1',
        port: portB,
        nodeId: 'node-b',
        timeoutMs: TIMEOUT_MS,
        healthIntervalMs: 100,
        peers: [addressOf(a.plugin.hub)],
      },
    });
    await b.plugin.hub.ready();
    return b;
  };
  a.plugin.hub.cluster!.setPeers([`127.0.0.1:${portB}`]);
  const b1 = await startB();
  await eventually(() => a.plugin.hub.cluster!.peers().length === 1, 'A sees B', 10_000);
  const down = new Promise<void>((resolve) => a.plugin.hub.on('peer-down', () => resolve()));
  await b1.plugin.close();
  await down;

  // Sent while B is down: it waits in A's store, and B's stream gets it by its pull from A.
  const first = await a.plugin.hub.qos.sendByUserId(41, 'bell', { n: 0 });
  const b2 = await startB();
  const stream = await RawStream.open(t, `${b2.base}/connect?access-token=41`);
  t.is((await stream.next('bell', 10_000)).id, first.messageId, 'the pull was answered');
  const sent = await a.plugin.hub.qos.sendByUserId(41, 'bell', { n: 1 });
  t.is((await stream.next('bell', 10_000)).id, sent.messageId);
});

test('mixed builds over HTTP: a request of a kind this build does not know (a later one’s) is refused and reported, and the node stays a peer', async (t) => {
  const a = await node(t, {});
  const b = await node(t, {});
  introduce([a.plugin.hub, b.plugin.hub]);
  await eventually(() => a.plugin.hub.cluster!.peers().length === 1 && b.plugin.hub.cluster!.peers().length === 1, 'peers up');
  // A stream on b first: the plugin reports to the app once it has served a request.
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=7`);
  const bId = a.plugin.hub.cluster!.peers()[0]!.nodeId;
  const later = { type: 'qos-later-kind' } as unknown as ClusterRequest;
  const refused = await a.plugin.hub.cluster!.request(bId, later).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.true(refused instanceof SsePeerError);
  t.is((refused as SsePeerError).code, 'ERR_SSE_PEER_REFUSED');
  // The receiver says why, once, as an error of its own (a faulty or newer peer): nothing else happened.
  await eventually(() => b.errors.length === 1, 'b reports it');
  t.true(b.errors[0] instanceof SseBadRequestError);
  t.deepEqual(a.errors, []);
  // Both still peers, and b answers what follows.
  t.is(await a.plugin.hub.sendByUserId(7, 'bell', 1), 1);
  await onB.next('bell');
  t.is(a.plugin.hub.cluster!.peers().length, 1);
  t.is(b.plugin.hub.cluster!.peers().length, 1);
});
