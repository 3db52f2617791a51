import test, { type ExecutionContext } from 'ava';
import { eventually } from './helpers/cluster.js';
import { threeNodes as nodes } from './helpers/memory-cluster.js';
import { RawStream, type Received } from './helpers/stream.js';

// The recovery window across the nodes of a cluster (in-process bus): each node keeps its own
// sends, and the node that takes a reconnect asks the others for their part.

const threeNodes = (t: ExecutionContext) => nodes(t, { timeoutMs: 300 });

const finishOf = (s: RawStream): { recovered: boolean; epoch: string } => JSON.parse(s.named('connect-finish')[0]!.data);
const bells = (s: RawStream): Received[] => s.named('bell');

test('a stream that comes back on another node gets what every node sent meanwhile, each sender in order; the nodes share the oldest epoch', async (t) => {
  const { a, b, c } = await threeNodes(t);
  const hubs = { a: a.plugin.hub, b: b.plugin.hub, c: c.plugin.hub };
  const first = await RawStream.open(t, `${a.base}/connect?access-token=1@t&channel=ch`);
  const epoch = finishOf(first).epoch;
  for (const [name, hub] of Object.entries(hubs)) await hub.sendByUserId('1', 'bell', `${name}0`);
  await first.until(() => bells(first).length === 3, 'three bells');
  const lastSeen = bells(first).at(-1)!.id!;
  await first.close();

  // Meanwhile, from every node, to every kind of target it is in.
  for (let n = 1; n <= 3; n++) {
    await hubs.a.sendByUserId('1', 'bell', `a${n}`);
    await hubs.b.sendByTenantId('t', 'bell', `b${n}`);
    await hubs.c.sendByChannel('ch', 'bell', `c${n}`);
    await hubs.b.sendAll('bell', `b-all${n}`);
  }
  await hubs.c.sendByUserId('2', 'bell', 'not for it');

  const back = await RawStream.open(t, `${c.base}/connect?access-token=1@t&channel=ch&recover=${encodeURIComponent(lastSeen)}`);
  t.deepEqual(finishOf(back), { ...finishOf(back), recovered: true, epoch }, 'one epoch for the cluster');
  await back.until(() => bells(back).length >= 12, '12 missed events');
  await hubs.a.sendByUserId('1', 'bell', 'live');
  await back.until(() => bells(back).some((e) => e.data === 'live'), 'the live one');
  // The client drops ids it saw already (a replay from another sender may overlap a few seconds).
  const seen = new Set(bells(first).map((e) => e.id));
  const shown = bells(back).filter((e) => !seen.has(e.id));
  const data = shown.map((e) => e.data);
  t.is(new Set(shown.map((e) => e.id)).size, shown.length, 'no id twice');
  t.deepEqual(
    data.filter((d) => d.startsWith('a')),
    ['a1', 'a2', 'a3'],
  );
  t.deepEqual(
    data.filter((d) => d.startsWith('b') && !d.startsWith('b-all')),
    ['b1', 'b2', 'b3'],
  );
  t.deepEqual(
    data.filter((d) => d.startsWith('b-all')),
    ['b-all1', 'b-all2', 'b-all3'],
  );
  t.deepEqual(
    data.filter((d) => d.startsWith('c')),
    ['c1', 'c2', 'c3'],
  );
  t.is(data.at(-1), 'live', 'the missed ones come before anything live');
  t.false(data.includes('not for it'));
});

test('a peer that does not answer: recovered false, the parts of the others still come', async (t) => {
  const { bus, a, b, c } = await threeNodes(t);
  const first = await RawStream.open(t, `${a.base}/connect?access-token=1`);
  await a.plugin.hub.sendByUserId('1', 'bell', 'a0');
  const seen = await first.next('bell');
  await first.close();
  await b.plugin.hub.sendByUserId('1', 'bell', 'b1');
  await c.plugin.hub.sendByUserId('1', 'bell', 'c1');
  bus.stall('b');
  t.teardown(() => bus.heal('b'));
  const back = await RawStream.open(t, `${c.base}/connect?access-token=1&recover=${encodeURIComponent(seen.id!)}`);
  t.false(finishOf(back).recovered);
  await back.until(() => bells(back).some((e) => e.data === 'c1'), "c's part");
  await c.plugin.hub.sendByUserId('1', 'bell', 'live');
  await back.until(() => bells(back).some((e) => e.data === 'live'), 'the live one');
  // What the page saw already comes again from the slack before its resume point: the client drops it by id.
  t.deepEqual(
    bells(back)
      .filter((e) => e.id !== seen.id)
      .map((e) => e.data),
    ['c1', 'live'],
    "a's and c's parts (a has nothing new), not b's (stalled)",
  );
});

test('nodes that start apart agree on the oldest epoch once they meet', async (t) => {
  const { a, b, c } = await threeNodes(t);
  const epochs = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const node of [a, b, c]) {
      const s = await RawStream.open(t, `${node.base}/connect?access-token=1`);
      out.push(finishOf(s).epoch);
      await s.close();
    }
    return out;
  };
  await eventually(async () => new Set(await epochs()).size === 1, 'one epoch');
  t.pass();
});
