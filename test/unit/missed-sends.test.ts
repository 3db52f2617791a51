// Which peers a node's durable sends may have missed (lib/cluster/missed-sends.ts): a peer
// that comes up is told to pull only when one did.
import test from 'ava';
import { MissedSends } from '../../lib/cluster/missed-sends.js';

test('a peer back is told only when a send was made while it was down', (t) => {
  const missed = new MissedSends();
  missed.down('p');
  t.false(missed.up('p'), 'nothing sent meanwhile');
  missed.sending();
  missed.down('p');
  t.false(missed.up('p'), 'a send before it went down reached it');
  missed.down('p');
  missed.sending();
  t.true(missed.up('p'), 'a send while it was down');
  t.false(missed.up('p'), 'told once');
});

test('a peer first seen is told when this node sent before; one a send failed to reach is told when it comes up', (t) => {
  const missed = new MissedSends();
  t.false(missed.up('new'), 'nothing sent since this node started');
  missed.sending();
  t.true(missed.up('other'), 'sent before this node saw it');
  // A send on its way when the peer went down: counted before, failed after.
  missed.down('p');
  missed.failed(['p']);
  t.true(missed.up('p'));
  t.false(missed.up('p'));
});
