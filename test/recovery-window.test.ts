import test from 'ava';
import { startPlugin } from './helpers/server.js';
import { RawStream, type Received } from './helpers/stream.js';

// The recovery window on one node, over real HTTP: a stream that comes back with the id of the
// last ordinary event it saw gets every event it missed, for every target kind, before any
// live event, and `connect-finish` says whether it did.

const finishOf = (s: RawStream): { recovered: boolean; epoch: string | null } => JSON.parse(s.named('connect-finish')[0]!.data);
const appEvents = (s: RawStream): Received[] => s.events.filter((e) => e.event !== 'connect-finish');

test('a stream that comes back gets every ordinary event it missed (user, token, tenant, channel, runtime channel, all, listening), then live ones', async (t) => {
  const { base, plugin } = await startPlugin(t, { authorizeChannel: () => true });
  const hub = plugin.hub;
  const url = (extra = ''): string => `${base}/connect?access-token=1@t1&channel=fixed&listeners=wanted${extra}`;
  const first = await RawStream.open(t, url('&channels=joined'));
  const epoch = finishOf(first).epoch;
  t.regex(String(epoch), /^[0-9a-z]{10}$/);
  t.false(finishOf(first).recovered, 'a fresh stream resumes nothing');
  await hub.sendByUserId('1', 'seen', { n: 0 });
  const seen = await first.next('seen');
  t.regex(seen.id ?? '', /^[0-9a-z]{10}\.[0-9a-z]+\.[0-9a-z]+\.[0-9a-f]{6}$/, 'ordinary events carry a window id');
  await first.close();
  await t.notThrowsAsync(() => hub.ready());

  // Missed while away: one per target kind, plus sends that must not come back.
  await hub.sendByUserId('1', 'e', 'user');
  await hub.sendByAccessToken('1@t1', 'e', 'token');
  await hub.sendByTenantId('t1', 'e', 'tenant');
  await hub.sendByChannel('fixed', 'e', 'fixed channel');
  await hub.sendByChannel('joined', 'e', 'runtime channel');
  await hub.sendAll('e', 'all');
  await hub.sendAll('wanted', 'listening, listened', { listening: true });
  await hub.sendAll('unwanted', 'listening, not listened', { listening: true });
  await hub.sendByUserId('2', 'e', 'another user');
  await hub.sendByTenantId('t2', 'e', 'another tenant');
  await hub.sendByChannel('other', 'e', 'another channel');

  const back = await RawStream.open(t, url(`&channels=joined&recover=${encodeURIComponent(seen.id!)}`));
  t.deepEqual(finishOf(back), { ...finishOf(back), recovered: true, epoch });
  await back.until(() => appEvents(back).length >= 7, 'the missed events');
  await hub.sendByUserId('1', 'live', 'after');
  await back.next('live');
  t.deepEqual(
    appEvents(back).map((e) => e.data),
    ['user', 'token', 'tenant', 'fixed channel', 'runtime channel', 'all', 'listening, listened', 'after'],
    'every missed event for it, once, in send order, before the live one',
  );
  const ids = appEvents(back).map((e) => e.id!);
  t.is(new Set(ids).size, ids.length);
  t.deepEqual(
    [...ids].sort((a, b) => idOrder(a) - idOrder(b)),
    ids,
    'ids in send order',
  );

  // Resuming from the last of them: nothing more.
  const again = await RawStream.open(t, url(`&recover=${encodeURIComponent(ids.at(-1)!)}`));
  t.true(finishOf(again).recovered);
  await hub.sendByUserId('1', 'live', 'marker');
  await again.next('live');
  t.deepEqual(
    appEvents(again).map((e) => e.data),
    ['marker'],
  );
});

test('Last-Event-ID with a window id resumes as `recover` does (a plain EventSource)', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const first = await RawStream.open(t, `${base}/connect?access-token=5`);
  await plugin.hub.sendByUserId('5', 'a', 1);
  const a = await first.next('a');
  await first.close();
  await plugin.hub.sendByUserId('5', 'b', 2);
  const back = await RawStream.open(t, `${base}/connect?access-token=5`, { headers: { 'Last-Event-ID': a.id! } });
  t.true(finishOf(back).recovered);
  t.is((await back.next('b')).data, '2');
});

test('another epoch, a resume point older than the window, or one the byte cap dropped: recovered false and nothing replayed', async (t) => {
  const { base, plugin } = await startPlugin(t, { recovery: { windowMs: 400, maxBytes: 4096 } });
  const hub = plugin.hub;
  const first = await RawStream.open(t, `${base}/connect?access-token=7`);
  await hub.sendByUserId('7', 'a', 'x');
  const a = await first.next('a');
  await first.close();

  // Another epoch: the same id from a history this server never had (a restart gives a new one).
  const otherEpoch = (a.id!.startsWith('0') ? '1' : '0') + a.id!.slice(1);
  await hub.sendByUserId('7', 'missed', 'y');
  const foreign = await RawStream.open(t, `${base}/connect?access-token=7&recover=${encodeURIComponent(otherEpoch)}`);
  t.false(finishOf(foreign).recovered);

  // The byte cap: 4 KiB hold a few of these, so the send after `a` is dropped by the later ones.
  for (let i = 0; i < 20; i++) await hub.sendByUserId('8', 'filler', 'z'.repeat(300));
  const capped = await RawStream.open(t, `${base}/connect?access-token=7&recover=${encodeURIComponent(a.id!)}`);
  t.false(finishOf(capped).recovered);

  // Older than the window (400 ms): recovered false even with nothing sent since.
  const second = await RawStream.open(t, `${base}/connect?access-token=9`);
  await hub.sendByUserId('9', 'b', 'x');
  const b = await second.next('b');
  await second.close();
  const since = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 500 - (Date.now() - since)));
  const late = await RawStream.open(t, `${base}/connect?access-token=9&recover=${encodeURIComponent(b.id!)}`);
  t.false(finishOf(late).recovered);

  await hub.sendByUserId(['7', '9'], 'live', 'now');
  for (const s of [foreign, capped, late]) {
    await s.next('live');
    t.deepEqual(
      appEvents(s).map((e) => e.event),
      ['live'],
      'nothing replayed when not recovered',
    );
  }
});

test('recovery: false: ordinary events carry no id and connect-finish says epoch null', async (t) => {
  const { base, plugin } = await startPlugin(t, { recovery: false });
  const s = await RawStream.open(t, `${base}/connect?access-token=1`);
  t.deepEqual(finishOf(s), { ...finishOf(s), recovered: false, epoch: null });
  await plugin.hub.sendByUserId('1', 'a', 1);
  t.is((await s.next('a')).id, undefined);
});

test('sends to connection ids carry no window id: their stream cannot come back as itself', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const s = await RawStream.open(t, `${base}/connect?access-token=1`);
  await plugin.hub.sendByConnectionId(s.connectionId, 'a', 1);
  t.is((await s.next('a')).id, undefined);
});

/** The (ms, seq) order of one sender's window ids. */
function idOrder(id: string): number {
  const [, ms, seq] = id.split('.');
  return parseInt(ms!, 36) * 1000 + parseInt(seq!, 36);
}
