// The window ids of peers' sends a node wrote lately: what it answers a sender whose forward
// timed out (window-took), so that a late write is not taken for a send its pages missed.
import test from 'ava';
import { TakenSends } from '../../lib/cluster/taken-sends.js';

test('the window ids a node wrote lately: kept for keepMs, the oldest go past the cap', (t) => {
  const taken = new TakenSends(2000);
  taken.took('a', 1000);
  taken.took('b', 2500);
  t.deepEqual(taken.which(['a', 'b', 'c'], 3000), ['a', 'b']);
  t.deepEqual(taken.which(['a', 'b'], 3001), ['b'], 'a is older than keepMs');
  for (let i = 0; i < 20_000; i++) taken.took(`w${i}`, 4000);
  const kept = taken.which(['w0', 'w19999'], 4000);
  t.deepEqual(kept, ['w19999'], 'at most 16384: the oldest went');
});
