// The follower role of a shared tab (browser/follower-tab.ts) with the tabs' bus faked: its
// listener and channel changes go to the leader tab and wait for its answer. A leader that
// closes without answering (its tab closed, no beforeunload) must not leave the change waiting
// forever: the next leader gets it again, and the first answer to come settles it, once.
import test from 'ava';
import { FollowerTab } from '../../../browser/follower-tab.js';
import { ok, type TabMessage } from '../../../browser/tab-bus.js';
import type { TabLink } from '../../../browser/tab-link.js';

function follower(): { tab: FollowerTab; posted: TabMessage[] } {
  const posted: TabMessage[] = [];
  const link: TabLink = {
    id: 'me',
    host: {
      elected: () => undefined,
      attachedChanged: () => undefined,
      connectionId: () => undefined,
      lastEventId: () => '',
      state: () => ({ listeners: [], channels: [] }),
      post: () => Promise.reject(new Error('a follower posts nothing itself')),
      ack: () => undefined,
      serverChannels: () => undefined,
    },
    post: (m) => posted.push(m),
  };
  return { tab: new FollowerTab(link, () => true), posted };
}

const requests = (posted: TabMessage[]): [string, number][] => posted.flatMap((m) => (m.t === 'req' ? [[m.to, m.id] as [string, number]] : []));

test('a change the leader did not answer before it closed goes to the next leader, and settles once', async (t) => {
  const { tab, posted } = follower();
  tab.onMessage({ t: 'leader', from: 'L1' });
  const answered = tab.request({ op: 'join', channels: ['a'] });
  t.deepEqual(requests(posted), [['L1', 1]]);
  // L1's tab closed without a word; another tab won the lock and says so.
  tab.onMessage({ t: 'leader', from: 'L2' });
  t.deepEqual(requests(posted), [
    ['L1', 1],
    ['L2', 1],
  ]);
  tab.onMessage({ t: 'res', from: 'L2', to: 'me', id: 1, answer: ok({ channels: ['a'] }) });
  const answer = await answered;
  t.is(answer.response.status, 200);
  t.deepEqual(answer.body, ok({ channels: ['a'] }).body);
  // A late answer of the same change (L1 had it after all) is dropped.
  t.notThrows(() => tab.onMessage({ t: 'res', from: 'L1', to: 'me', id: 1, answer: ok({ channels: [] }) }));
});

test('a change made while no tab leads waits, then goes to the first leader', async (t) => {
  const { tab, posted } = follower();
  const answered = tab.request({ op: 'listeners', names: ['x'] });
  t.deepEqual(requests(posted), [], 'nobody to send it to yet');
  tab.onMessage({ t: 'leader', from: 'L1' });
  t.deepEqual(requests(posted), [['L1', 1]]);
  tab.onMessage({ t: 'res', from: 'L1', to: 'me', id: 1, answer: ok({ listener: ['x'] }) });
  t.is((await answered).response.status, 200);
});
