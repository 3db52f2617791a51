// The browser client's modules that hold logic, in Node (no Chromium): the event-stream
// parser, the reconnect backoff, the outbox of calls waiting for a connection, and the
// shared-tabs leader's durable bookkeeping (the tab role's rule: ack once every tab delivered).
import test from 'ava';
import { Backoff } from '../../../browser/backoff.js';
import { SseClientError } from '../../../browser/errors.js';
import type { HttpAnswer } from '../../../browser/http.js';
import { Outbox, PendingCall } from '../../../browser/outbox.js';
import { EventStreamParser, type ParsedEvent } from '../../../browser/parser.js';
import { TabAcks } from '../../../browser/tab-acks.js';

function parse(chunks: string[]): { events: ParsedEvent[]; retries: number[] } {
  const events: ParsedEvent[] = [];
  const retries: number[] = [];
  const parser = new EventStreamParser(
    (e) => events.push(e),
    (ms) => retries.push(ms),
  );
  for (const chunk of chunks) parser.feed(chunk);
  return { events, retries };
}

test('parser: CR, LF and CRLF line ends, also split across chunks; multi-line data; comments and unknown fields ignored', (t) => {
  const { events } = parse(['event: a\r', '\ndata: 1\r\ndata: 2\r\r', ': comment\nfoo: bar\ndata:x\n', '\n']);
  t.deepEqual(
    events.map((e) => [e.type, e.data]),
    [
      ['a', '1\n2'],
      ['message', 'x'],
    ],
  );
});

test('parser: a frame with its own id is marked; the last id persists across frames; retry reported at once', (t) => {
  const { events, retries } = parse(['id: 7\ndata: d\n\n', 'retry: 1500\ndata: live\n\n', 'retry: x\nid: bad\0id\ndata: z\n\n']);
  t.deepEqual(
    events.map((e) => [e.data, e.id, e.lastEventId]),
    [
      ['d', '7', '7'],
      ['live', undefined, '7'],
      ['z', undefined, '7'],
    ],
    'only a frame with its own id is durable; an id with NUL is ignored',
  );
  t.deepEqual(retries, [1500], 'a retry that is not a number is ignored');
});

test('parser: a frame without data is not an event, but its id still moves the last id', (t) => {
  const { events } = parse(['id: 3\n\n', 'data: after\n\n']);
  t.deepEqual(
    events.map((e) => [e.data, e.lastEventId]),
    [['after', '3']],
  );
});

test('backoff: each delay lies in [cap/2, cap], the cap doubling up to max; reset starts over', (t) => {
  const backoff = new Backoff(
    () => 100,
    () => 1000,
  );
  const caps = [100, 200, 400, 800, 1000, 1000];
  for (const cap of caps) {
    const delay = backoff.next();
    t.true(delay >= cap / 2 && delay <= cap, `${delay} in [${cap / 2}, ${cap}]`);
  }
  backoff.reset();
  t.true(backoff.next() <= 100);
});

const answer = (): HttpAnswer => ({ response: new Response('{}'), body: {} });

function call(seq: number, timeoutMs = 60_000): { call: PendingCall; result: Promise<unknown> } {
  let settle!: { resolve: (v: unknown) => void; reject: (e: unknown) => void };
  const result = new Promise((resolve, reject) => (settle = { resolve, reject }));
  const c = new PendingCall(seq, timeoutMs, { type: 'send', path: `p${seq}` }, () => Promise.resolve(answer()), settle.resolve, settle.reject);
  return { call: c, result };
}

test('outbox: bounded; calls leave in call order, also one requeued after a failed attempt', (t) => {
  const outbox = new Outbox(() => 2);
  const a = call(1);
  const b = call(2);
  const c = call(3);
  t.true(outbox.push(a.call));
  t.true(outbox.push(b.call));
  t.false(outbox.push(c.call), 'full: refused at once');
  const first = outbox.shift()!;
  t.is(first.seq, 1);
  outbox.requeue(first);
  t.deepEqual(
    outbox.snapshot().map((q) => q.path),
    ['p1', 'p2'],
    'a requeued call keeps its place',
  );
  outbox.rejectAll(new SseClientError('ERR_SSE_DESTROYED', 'gone'));
  t.is(outbox.size, 0);
  for (const p of [a.result, b.result]) p.catch(() => undefined);
});

test('outbox: a call that waits past its deadline is rejected with ERR_SSE_QUEUE_TIMEOUT and leaves the queue', async (t) => {
  const outbox = new Outbox(() => 10);
  const late = call(1, 20);
  outbox.push(late.call);
  const err = await t.throwsAsync(late.result);
  t.is((err as SseClientError).code, 'ERR_SSE_QUEUE_TIMEOUT');
  t.is(outbox.size, 0);
  const settledTwice = call(2);
  settledTwice.call.resolve(answer());
  settledTwice.call.reject(new Error('no'));
  await t.notThrowsAsync(settledTwice.result, 'a call settles once');
});

test('tab acks (leader role): a durable message is acknowledged once every tab that had the stream delivered it or left', (t) => {
  const acked: string[][] = [];
  const acks = new TabAcks((ids) => acked.push(ids));
  const event = (id: string): ParsedEvent & { id: string } => ({ type: 'bell', data: id, id, lastEventId: id });
  acks.arrived(event('m1'), ['leader', 'f1']);
  acks.arrived(event('m2'), ['leader', 'f1', 'f2']);
  acks.delivered('leader', ['m1', 'm2']);
  t.deepEqual(acked, [], 'the followers have not confirmed');
  acks.delivered('f1', ['m1', 'm2']);
  t.deepEqual(acked, [['m1']]);
  acks.left('f2');
  t.deepEqual(acked, [['m1'], ['m2']], 'a tab that left is not waited for');
  acks.delivered('f1', ['m9']);
  t.deepEqual(acked.at(-1), ['m9'], 'an id never held back is acknowledged at once');
  t.deepEqual(
    acks.after('m1').map((e) => e.id),
    ['m2'],
    'a tab that saw m1 is handed what came after it',
  );
  t.deepEqual(acks.after(''), [], 'a tab that saw nothing durable gets none of the past');
  acks.clear();
  t.deepEqual(acks.after('unknown'), []);
});
