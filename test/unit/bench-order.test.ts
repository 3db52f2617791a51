// The interleaved benchmarks (connect-abba, fanout-abba, deliver-cost, fanout --against) rest on
// every contender going first and last equally often: this machine drifts within a run, and
// whoever goes first meets a different machine.
import test from 'ava';
import { abbaOrder } from '../../scripts/bench/abba.js';

for (const count of [1, 2, 3, 4, 5]) {
  test(`${count} contender(s): over 2 × ${count} rounds each goes first twice and last twice, each round a permutation`, (t) => {
    const first = new Array<number>(count).fill(0);
    const last = new Array<number>(count).fill(0);
    for (let r = 1; r <= 2 * count; r++) {
      const order = abbaOrder(count, r);
      t.deepEqual(
        [...order].sort(),
        Array.from({ length: count }, (_, i) => i),
      );
      first[order[0]!]!++;
      last[order.at(-1)!]!++;
    }
    t.deepEqual(first, new Array<number>(count).fill(2));
    t.deepEqual(last, new Array<number>(count).fill(2));
  });
}

test('two contenders: A B, B A, B A, A B', (t) => {
  t.deepEqual(
    [1, 2, 3, 4].map((r) => abbaOrder(2, r).join('')),
    ['01', '10', '10', '01'],
  );
});
