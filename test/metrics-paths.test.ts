// Every event written to a stream counts once in the node's totals (`stats.eventsSent`, the
// dashboard, `sse_events_sent_total`), whichever path wrote it: a send, a send by connection
// id, connection.send, a durable send written live by its owner, one forwarded by a peer, and
// a durable replay. Protocol frames (connect-finish, heartbeats) are not sends.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBus } from '../lib/index.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

const PROTOCOL = new Set(['connect-finish', 'heartbeat', 'connect-close']);

test('each path that writes an event to a stream counts it once on the node that wrote it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sse-metrics-paths-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bus = new MemoryBus();
  const a = await startPlugin(t, { qos: { file: join(dir, 'a.db') }, cluster: { transport: bus.transport('a'), timeoutMs: 500 } });
  const b = await startPlugin(t, { qos: { file: join(dir, 'b.db') }, cluster: { transport: bus.transport('b'), timeoutMs: 500 } });
  await a.plugin.hub.ready();
  await b.plugin.hub.ready();
  const hubA = a.plugin.hub;
  const hubB = b.plugin.hub;

  const onA = await RawStream.open(t, `${a.base}/connect?access-token=7`);
  const onB = await RawStream.open(t, `${b.base}/connect?access-token=8`);
  await hubA.sendByUserId(7, 'plain', 1); // A writes 1
  await hubA.sendByConnectionId(onA.connectionId, 'by-id', 2); // A writes 1
  await hubA.getLocalConnection(onA.connectionId)!.send('own', 3); // A writes 1
  await hubA.qos.sendByUserId(7, 'durable-live', 4); // A (the owner) writes 1
  await hubA.qos.sendByUserId(8, 'durable-forwarded', 5); // B writes 1, forwarded by A
  await hubA.sendAll('everyone', 6); // A writes 1, B writes 1
  // A durable message for a user who is away, replayed by the node they come back to.
  await hubA.qos.sendByUserId(9, 'durable-replayed', 7);
  const later = await RawStream.open(t, `${b.base}/connect?access-token=9`);
  await later.next('durable-replayed'); // B writes 1
  await onA.next('everyone');
  await onB.next('everyone');
  await onB.next('durable-forwarded');

  const sends = (s: RawStream): number => s.events.filter((e) => !PROTOCOL.has(e.event)).length;
  t.is(sends(onA), 5);
  t.is(sends(onB) + sends(later), 3);
  t.is(hubA.stats.eventsSent, sends(onA), 'node A counts what it wrote');
  t.is(hubB.stats.eventsSent, sends(onB) + sends(later), 'node B counts what it wrote, forwarded and replayed too');
  const metrics = await (await fetch(`${a.base}/connect/stats.json?access-token=admin`)).json();
  t.is((metrics as { data: { local: { eventsSent: number } } }).data.local.eventsSent, 5, 'the dashboard shows the same');
});
