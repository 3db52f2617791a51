// The browser client's request pipeline against the server's per-connection rate limits
// (issue 26), in Node over real HTTP: a call refused with 429 is sent again after Retry-After,
// and the calls reach the app in the order they were made. It lives here, type-checked with the
// DOM library the browser modules are written against (test/unit/browser/tsconfig.json), so that
// it imports them as they are: a change of their signatures fails `npm run typecheck` here
// instead of a call that times out in CI.
import test from 'ava';
import { request } from '../../../browser/http.js';
import { RequestPipeline } from '../../../browser/request-pipeline.js';
import { startPlugin } from '../../helpers/server.js';
import { RawStream } from '../../helpers/stream.js';

test('the browser pipeline sends a rate-limited call again after Retry-After, and the app gets the calls in call order', async (t) => {
  t.timeout(30_000);
  const order: number[] = [];
  const s = await startPlugin(t, {
    requestRateLimit: { message: { perSecond: 1, burst: 1 } },
    onMessage: (_path, _ctx, _conn, body) => order.push((body as { n: number }).n),
  });
  const c = await RawStream.open(t, `${s.base}/connect?access-token=7`);
  const failures: string[] = [];
  const pipeline = new RequestPipeline(
    {
      connectionId: () => c.connectionId,
      connectionLost: () => undefined,
      changed: () => undefined,
      failed: (e) => failures.push((e as { code: string }).code),
    },
    { maxQueueSize: 100, queueTimeout: 20_000, maxReconnectTime: 1000 },
    () => 100,
  );
  t.teardown(() => pipeline.stop(new Error('test over')));
  const started = Date.now();
  const answers = await Promise.all(
    [1, 2, 3, 4].map((n) =>
      pipeline.submit({ type: 'send', path: 'x' }, (connectionId, signal) =>
        request(`${s.base}/connect/message/x.do?access-token=7&connectionId=${connectionId}`, JSON.stringify({ n }), {
          credentials: 'same-origin',
          signal,
          timeout: 5000,
        }),
      ),
    ),
  );
  t.deepEqual(
    answers.map((a) => a.response.status),
    [200, 200, 200, 200],
  );
  t.deepEqual(order, [1, 2, 3, 4], 'in call order, each once');
  t.true(failures.includes('ERR_SSE_RATE_LIMITED'), `refused and sent again: ${failures.join()}`);
  // Four calls with one per second and a burst of one: the last waited for a Retry-After.
  t.true(Date.now() - started >= 1000, 'it waited for Retry-After');
});
