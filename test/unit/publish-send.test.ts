// The publish API's send (lib/http/publish.ts): each target reaches the hub's send of that
// kind (durable: hub.qos's), with the message's keys, event, data and options, over a fake hub
// that records the calls.
import test from 'ava';
import type { Hub } from '../../lib/hub.js';
import { send, type PublishMessage } from '../../lib/http/publish.js';
import type { PublishTargetKind } from '../../lib/http/publish-keys.js';

type Call = [method: string, ...args: unknown[]];

function fakeHub(calls: Call[]): Hub {
  /** Any method: records its name and arguments, answers `answer`; `extra` as they are. */
  const sender = (via: string, answer: unknown, extra: Record<string, unknown> = {}): object =>
    new Proxy(extra, {
      get: (target, method: string) =>
        method in target
          ? target[method]
          : async (...args: unknown[]) => {
              calls.push([`${via}${method}`, ...args]);
              return answer;
            },
    });
  return sender('', 2, { qos: sender('qos.', { delivered: 3, messageId: 'm1', copies: 2 }) }) as Hub;
}

const METHOD: Record<PublishTargetKind, string> = {
  all: 'sendAll',
  user: 'sendByUserId',
  token: 'sendByAccessToken',
  tenant: 'sendByTenantId',
  channel: 'sendByChannel',
};

for (const target of Object.keys(METHOD) as PublishTargetKind[]) {
  test(`publish: target ${target} goes to the hub's ${METHOD[target]}, and a durable one to hub.qos's`, async (t) => {
    const keys = target === 'all' ? [''] : ['k1', 'k2'];
    const base: PublishMessage = { target, keys, event: 'e', data: { x: 1 }, durable: false, listening: true };
    const args = target === 'all' ? [] : [keys];

    const calls: Call[] = [];
    t.deepEqual(await send(fakeHub(calls), base), { delivered: 2 });
    t.deepEqual(calls, [[METHOD[target], ...args, 'e', { x: 1 }, { listening: true }]]);

    const durable: Call[] = [];
    const answer = await send(fakeHub(durable), { ...base, durable: true, ttlMs: 60_000, idempotencyKey: 'once' });
    t.deepEqual(answer, { delivered: 3, messageId: 'm1', copies: 2 });
    t.deepEqual(durable, [[`qos.${METHOD[target]}`, ...args, 'e', { x: 1 }, { listening: true, ttlMs: 60_000, idempotencyKey: 'once' }]]);
  });
}
