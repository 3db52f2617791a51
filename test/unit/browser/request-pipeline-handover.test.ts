// The browser client's request pipeline when the connection changes under a call in flight, as
// it does when shared tabs hand the stream to another tab (CI: a follower tab's send timed out
// with ERR_SSE_QUEUE_TIMEOUT after the leader tab closed). The call went out on the old
// connection; the tab moved to the new one (its `connected` found nothing waiting); then the
// server answered the old call "unknown connection". That answer must send the call again on
// the new connection, not leave it in the outbox until its queue timeout.
import test, { type ExecutionContext } from 'ava';
import type { HttpAnswer } from '../../../browser/http.js';
import { RequestPipeline } from '../../../browser/request-pipeline.js';

function answer(status: number, body: unknown): HttpAnswer {
  return { response: new Response(JSON.stringify(body), { status }), body };
}

const unknownConnection = (): HttpAnswer => answer(404, { success: false, code: 'ERR_SSE_UNKNOWN_CONNECTION' });

/** A pipeline over a connection the test moves; `run` answers calls on `old` when the test says. */
function setup(t: ExecutionContext, connection: string | undefined) {
  const state = { connection, lost: [] as string[] };
  const pipeline = new RequestPipeline(
    {
      connectionId: () => state.connection,
      // As the client: a loss of the current connection ends it; an older one's changes nothing.
      connectionLost: (id) => {
        state.lost.push(id);
        if (id === state.connection) state.connection = undefined;
      },
      changed: () => undefined,
      failed: () => undefined,
    },
    // The queue timeout bounds the test: without the fix the call waits until it and rejects.
    { maxQueueSize: 10, queueTimeout: 3000, maxReconnectTime: 1000 },
    () => 100,
  );
  t.teardown(() => pipeline.stop(new Error('test over')));
  const attempts: string[] = [];
  let answerOld: ((a: HttpAnswer) => void) | undefined;
  const submit = (n: number): Promise<HttpAnswer> =>
    pipeline.submit({ type: 'send', path: 'x' }, (connectionId) => {
      attempts.push(`${n}@${connectionId}`);
      if (connectionId === 'old') return new Promise((resolve) => (answerOld = resolve));
      return Promise.resolve(answer(200, { n }));
    });
  const moveTo = (id: string): void => {
    state.connection = id;
    pipeline.connected();
  };
  return { state, pipeline, attempts, submit, moveTo, answerOld: (a: HttpAnswer) => answerOld!(a) };
}

test('a call sent at once on a connection gone meanwhile is sent again on the new one', async (t) => {
  const s = setup(t, 'old');
  const call = s.submit(1);
  t.deepEqual(s.attempts, ['1@old']);
  // The stream moved to another connection before the old one's answer came.
  s.moveTo('new');
  s.answerOld(unknownConnection());
  const a = await call;
  t.is(a.response.status, 200);
  t.deepEqual(s.attempts, ['1@old', '1@new']);
  t.deepEqual(s.state.lost, ['old'], 'the old connection was reported, the new one kept');
});

test('a queued call drained onto a connection gone meanwhile is sent again on the new one, before the later calls', async (t) => {
  const s = setup(t, undefined);
  const first = s.submit(1);
  s.moveTo('old');
  t.deepEqual(s.attempts, ['1@old']);
  const second = s.submit(2); // waits behind the first (the outbox is draining)
  s.moveTo('new'); // the drain in progress keeps the turn
  s.answerOld(unknownConnection());
  const answers = await Promise.all([first, second]);
  t.deepEqual(
    answers.map((a) => a.body),
    [{ n: 1 }, { n: 2 }],
  );
  t.deepEqual(s.attempts, ['1@old', '1@new', '2@new'], 'in call order, on the new connection');
});

test('a call whose own connection is gone waits for the next connection (no retry on the lost one)', async (t) => {
  const s = setup(t, 'old');
  const call = s.submit(1);
  s.answerOld(unknownConnection());
  await new Promise((resolve) => setImmediate(resolve));
  t.is(s.state.connection, undefined, 'the loss of the current connection was reported');
  t.deepEqual(s.attempts, ['1@old'], 'not sent again while there is no connection');
  t.deepEqual(s.pipeline.waiting(), [{ type: 'send', path: 'x' }]);
  s.moveTo('new');
  t.is((await call).response.status, 200);
  t.deepEqual(s.attempts, ['1@old', '1@new']);
});
