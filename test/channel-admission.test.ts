// Issue 21, finding 1: the connect-time `channel` parameter went around `authorizeChannel`.
// A user refused `join.do` for `secret:1` connected with `channel=secret:1&lastEventId=0…0`
// and got the channel's stored log, its live sends and its presence. With the hook, the fixed
// channel is now asked like any other and a refusal refuses the stream; the durable log is
// replayed only for channels the stream was admitted to. Without the hook the fixed channel
// is taken as sent (the Java library's behaviour, documented in README and SECURITY.md).
import test from 'ava';
import { type SsePluginOptions } from '../lib/index.js';
import { assertError, request, type Reply } from './helpers/reply.js';
import { postJson, startPlugin, type StartedPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

/** The test app: any logged-in user may be in `room:<anything>`, nothing else. */
const rooms: Partial<SsePluginOptions> = { qos: { file: ':memory:' }, authorizeChannel: (_ctx, _user, channel) => channel.startsWith('room:') };
const FROM_START = '0'.repeat(26);

/** A durable history in `secret:1` and `room:1`, sent before anyone connects. */
async function history(s: StartedPlugin): Promise<void> {
  await s.plugin.hub.qos.sendByChannel('secret:1', 'minutes', 'the board meets at noon');
  await s.plugin.hub.qos.sendByChannel('room:1', 'chat', 'hello room');
}

test('with authorizeChannel, a refused fixed channel refuses the stream (403): no history, no live sends, no presence', async (t) => {
  const s = await startPlugin(t, rooms);
  await history(s);
  const page = await RawStream.open(t, `${s.base}/connect?access-token=1`);
  // The premise: join.do refuses it.
  assertError(
    t,
    await request(`${s.base}/connect/join.do?access-token=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ connectionId: page.connectionId, channels: ['secret:1'] }),
    }),
    403,
    'ERR_SSE_CHANNEL_DENIED',
  );
  // Every way to name the fixed channel and a resume point at connect.
  const attempts: [string, RequestInit][] = [
    [`${s.base}/connect?access-token=1&channel=secret:1&lastEventId=${FROM_START}`, {}],
    [`${s.base}/connect?access-token=1&channel=secret:1`, { headers: { 'last-event-id': FROM_START } }],
    [
      `${s.base}/connect?access-token=1`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'secret:1', lastEventId: FROM_START }) },
    ],
    // Allowed restored channels do not carry a refused fixed one in.
    [`${s.base}/connect?access-token=1&channel=secret:1&channels=room:1&lastEventId=${FROM_START}`, {}],
  ];
  for (const [url, init] of attempts) {
    const reply = await attempt(url, init);
    assertError(t, reply, 403, 'ERR_SSE_CHANNEL_DENIED');
    t.regex(String(reply.body?.message), /secret:1/);
    t.false(reply.text.includes('board meets'), 'not a byte of the history');
  }
  t.is(await s.plugin.hub.getConnectionCount(), 1, 'only the first page is connected');
  t.is(await s.plugin.hub.sendByChannel('secret:1', 'live', 1), 0, 'no member for live sends');
  t.deepEqual((await s.plugin.hub.presence('secret:1')).users, []);
  // The page itself is not a member: presence.json of the channel stays closed to it.
  assertError(
    t,
    await request(`${s.base}/connect/presence.json?access-token=1&connectionId=${page.connectionId}&channel=secret:1`),
    403,
    'ERR_SSE_FORBIDDEN',
  );
});

test('with authorizeChannel, an allowed fixed channel opens and resumes its log; a refused restored channel is neither joined nor replayed', async (t) => {
  const s = await startPlugin(t, rooms);
  await history(s);
  const page = await RawStream.open(t, `${s.base}/connect?access-token=1&channel=room:1&channels=secret:1,room:2&lastEventId=${FROM_START}`);
  t.deepEqual(JSON.parse(page.events[0]!.data).channels, ['room:2'], 'the refused restore is dropped');
  t.is((await page.next('chat')).data, 'hello room', 'the admitted channel resumes');
  t.deepEqual(page.named('minutes'), [], 'the refused channel is not replayed');
  t.is(await s.plugin.hub.sendByChannel('secret:1', 'live', 1), 0);
  t.is(await s.plugin.hub.sendByChannel('room:1', 'live', 1), 1);
  const presence = await request(`${s.base}/connect/presence.json?access-token=1&connectionId=${page.connectionId}&channel=room:1`);
  t.is(presence.status, 200, presence.text);
});

test('the hook is asked for the fixed channel with the user, and may refuse it by user', async (t) => {
  const asked: [string | undefined, string][] = [];
  const s = await startPlugin(t, {
    authorizeChannel: (_ctx, user, channel) => {
      asked.push([user.id === undefined ? undefined : String(user.id), channel]);
      return channel === `ticket:${String(user.id)}`;
    },
  });
  const own = await RawStream.open(t, `${s.base}/connect?access-token=42&channel=ticket:42`);
  t.is(own.status, 200);
  assertError(t, await attempt(`${s.base}/connect?access-token=43&channel=ticket:42`), 403, 'ERR_SSE_CHANNEL_DENIED');
  t.deepEqual(asked, [
    ['42', 'ticket:42'],
    ['43', 'ticket:42'],
  ]);
});

test('without authorizeChannel the fixed channel is taken as sent (the Java behaviour): a member for sends, its log and presence', async (t) => {
  const s = await startPlugin(t, { qos: { file: ':memory:' } });
  await history(s);
  const page = await RawStream.open(t, `${s.base}/connect?access-token=1&channel=secret:1&lastEventId=${FROM_START}`);
  t.is((await page.next('minutes')).data, 'the board meets at noon');
  t.is(await s.plugin.hub.sendByChannel('secret:1', 'live', 1), 1);
  const presence = await request(`${s.base}/connect/presence.json?access-token=1&connectionId=${page.connectionId}&channel=secret:1`);
  t.is(presence.status, 200, presence.text);
  // Runtime joins stay closed without the hook.
  assertError(
    t,
    await postJsonReply(`${s.base}/connect/join.do?access-token=1`, { connectionId: page.connectionId, channels: ['room:1'] }),
    403,
    'ERR_SSE_CHANNEL_DENIED',
  );
});

/**
 * A connect attempt's answer: its status and text, where a stream that opened (the fault) is
 * read for a moment and then dropped instead of waited for to its end.
 */
async function attempt(url: string, init: RequestInit = {}): Promise<Reply> {
  const abort = new AbortController();
  const res = await fetch(url, { ...init, signal: abort.signal });
  let text = '';
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const reader = res.body!.getReader();
    const until = Date.now() + 500;
    try {
      while (Date.now() < until) {
        const { value, done } = await Promise.race([
          reader.read(),
          new Promise<{ value: undefined; done: true }>((r) => setTimeout(() => r({ value: undefined, done: true }), until - Date.now())),
        ]);
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
    } finally {
      abort.abort();
    }
  } else {
    text = await res.text();
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

async function postJsonReply(url: string, body: unknown) {
  const { status, body: parsed } = await postJson(url, body);
  return { status, body: parsed, text: JSON.stringify(parsed), headers: new Headers() };
}
