// The leave queue alone: held leaves, their decision, and the memory of announced leaves.
import test from 'ava';
import { LeaveQueue, type PendingLeave } from '../../lib/local/leave-queue.js';
import { eventually } from '../helpers/cluster.js';

test('announced leaves are forgotten on their own timer, without a further leave (churn: memory back to baseline)', async (t) => {
  const delayMs = 40;
  const due: PendingLeave[] = [];
  const queue = new LeaveQueue(delayMs, (leave) => due.push(leave));
  t.teardown(() => queue.clear());
  const pairs = 500;
  for (let i = 0; i < pairs; i++) queue.add(`room:${i}`, 'u1', Date.now());
  t.is(queue.size, pairs);
  await eventually(() => due.length === pairs, 'every leave due', 5000);
  // The cluster decided: every leave stands and is announced from here.
  for (const leave of due) {
    t.true(queue.settle(leave));
    queue.announced(leave);
  }
  t.is(queue.announcedAt('room:0', 'u1'), due[0]!.leftAt, 'remembered for a peer deciding the same leave');
  t.is(queue.size, pairs, 'remembered for another delay');
  // Nothing else happens: no leave, no question. The memory must still be released.
  await eventually(() => queue.size === 0, 'the announced leaves forgotten', 5000);
  t.is(queue.announcedAt('room:0', 'u1'), undefined);
});

test('a rejoin during the decision cancels the leave; held leaves go due in order', async (t) => {
  const due: PendingLeave[] = [];
  const queue = new LeaveQueue(20, (leave) => due.push(leave));
  t.teardown(() => queue.clear());
  queue.add('a', 'u1', Date.now());
  queue.add('b', 'u1', Date.now());
  t.true(queue.cancel('a', 'u1'));
  await eventually(() => due.length === 1, 'the leave of b due');
  t.is(due[0]!.channel, 'b');
  t.truthy(queue.get('b', 'u1'), 'being decided');
  t.true(queue.cancel('b', 'u1'), 'the user came back while the cluster was asked');
  t.false(queue.settle(due[0]!));
  t.is(queue.size, 0);
});
