// The rule that decides whether a live durable message is left to a replay running for a
// connection (lib/qos/replay-phase.ts), without a store or a socket.
import test from 'ava';
import { MessageIdGenerator } from '../../lib/qos/message-id.js';
import type { DurableMessage } from '../../lib/qos/qos-cluster.js';
import { ReplayPhase } from '../../lib/qos/replay-phase.js';

const a = new MessageIdGenerator('aaaaaaaa');
const b = new MessageIdGenerator('bbbbbbbb');
const msg = (ids: MessageIdGenerator, kind: DurableMessage['kind'] = 'user'): DurableMessage => ({
  id: ids.next(1000),
  kind,
  event: 'e',
  data: '',
  listening: false,
});
const idsOf = (list: DurableMessage[]): string[] => list.map((m) => m.id);

test('while it runs a live message is held; a read that covers it makes it the replay’s; the rest is written after, oldest first', (t) => {
  const phase = new ReplayPhase();
  const [m1, m2, m3, m4] = [msg(a), msg(a), msg(a), msg(a)];
  t.true(phase.takes(m3!));
  t.true(phase.takes(m2!));
  t.true(phase.takes(m4!));
  phase.read(true, m2!.id); // the store held m1, m2 when it was read
  t.deepEqual(idsOf(phase.finish()), [m3!.id, m4!.id], 'm2 was read; m3 and m4 come after, in id order');
  t.true(phase.takes(msg(a)), 'still running until a finish finds nothing held');
  t.is(phase.finish().length, 1);
  t.deepEqual(phase.finish(), [], 'over');
  t.true(phase.takes(m1!), 'a late live copy of a message a read covered is not written again');
  t.false(phase.takes(msg(a)), 'a newer one is written at once');
});

test("a read vouches only for its owner's messages of its class", (t) => {
  const phase = new ReplayPhase();
  const older = msg(a);
  const fromB = msg(b);
  const logOfA = msg(a, 'tenant');
  const queueOfA = msg(a);
  for (const m of [fromB, logOfA, queueOfA]) t.true(phase.takes(m));
  phase.pulled([older]); // older than the three: covers none
  t.is(phase.finish().length, 3);
  t.deepEqual(phase.finish(), []);
  phase.begin(); // a second pull (a peer came up): the same messages arrive again while it runs
  for (const m of [fromB, logOfA, queueOfA]) t.true(phase.takes(m));
  phase.pulled([{ ...queueOfA }]); // the owner answered queueOfA: it is the pull's
  t.deepEqual(idsOf(phase.finish()), [logOfA.id, fromB.id].sort());
  t.deepEqual(phase.finish(), []);
  t.false(phase.takes(msg(b)));
});

test('two runs at once: the phase ends with the last one; stop drops what was held', (t) => {
  const phase = new ReplayPhase();
  phase.begin();
  const m = msg(a);
  t.true(phase.takes(m));
  t.deepEqual(phase.finish(), [], 'the other run writes it');
  t.true(phase.takes(msg(a)), 'still running');
  t.is(phase.finish().length, 2);
  phase.begin();
  t.true(phase.takes(msg(a)));
  phase.stop();
  t.deepEqual(phase.finish(), []);
  t.false(phase.takes(msg(a)));
});
