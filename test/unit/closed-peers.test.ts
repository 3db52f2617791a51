// Which peers that closed gracefully a node still takes as drained (a send they fail reaches no
// stream) or as closed gracefully (not excused by their going): the LAN recovery window relies
// on both to say `recovered` neither too often nor too rarely.
import test from 'ava';
import { ClosedPeers } from '../../lib/cluster/closed-peers.js';

test('a peer that handed its window over is drained until seen down plus the settle time, or heard from, or seen up again', (t) => {
  const peers = new ClosedPeers(1500);
  t.false(peers.drained('x', 1000));
  peers.handedOff('x', 1000);
  t.true(peers.drained('x', 5000), 'not seen down yet: for as long as it takes');
  peers.down('x', 6000);
  t.true(peers.drained('x', 7500), 'a send under way when it went down may still fail');
  t.false(peers.drained('x', 7501));
  t.true(peers.closedGracefully('x'), 'its going does not excuse what it failed before');

  peers.handedOff('y', 1000);
  peers.heardFrom('y');
  t.false(peers.drained('y', 1001), 'it asked something: it serves again');
  t.true(peers.closedGracefully('y'));
  peers.back('y');
  t.false(peers.closedGracefully('y'), 'seen up again under its node id');

  peers.forget(1001);
  t.false(peers.closedGracefully('x'), 'forgotten with the window');
});
