import test from 'ava';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

test('every send target reaches exactly its connections', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const hub = plugin.hub;
  const a = await RawStream.open(t, `${base}/connect?access-token=1@10&channel=sales`);
  const b = await RawStream.open(t, `${base}/connect?access-token=2@10&channel=ops`);
  const c = await RawStream.open(t, `${base}/connect?access-token=3@20&channel=sales`);
  const anon = await RawStream.open(t, `${base}/connect?access-token=anon@20`);

  t.is(await hub.sendByUserId(1, 'u', { n: 1 }), 1);
  t.is(await hub.sendByUserId(['2', 3], 'u', { n: 2 }), 2);
  t.is(await hub.sendByTenantId(10, 't', 'tenant 10'), 2);
  t.is(await hub.sendByChannel('sales', 'c', 'sales'), 2);
  t.is(await hub.sendByAccessToken('anon@20', 'k', 'token'), 1);
  t.is(await hub.sendAll('all', [1, 2]), 4);
  t.is(await hub.sendByUserId('nobody', 'u', 1), 0);
  t.is(await hub.sendByConnectionId(b.connectionId, 'direct', 'hi'), 1);

  await a.until(() => a.named('all').length === 1, 'all on a');
  await anon.until(() => anon.named('all').length === 1, 'all on anon');
  await b.until(() => b.named('direct').length === 1, 'direct on b');
  await c.until(() => c.named('all').length === 1, 'all on c');
  t.deepEqual(
    a.events.slice(1).map((e) => [e.event, e.data]),
    [
      ['u', '{"n":1}'],
      ['t', 'tenant 10'],
      ['c', 'sales'],
      ['all', '[1,2]'],
    ],
  );
  t.deepEqual(
    b.events.slice(1).map((e) => e.event),
    ['u', 't', 'all', 'direct'],
  );
  t.deepEqual(
    c.events.slice(1).map((e) => e.event),
    ['u', 'c', 'all'],
  );
  t.deepEqual(
    anon.events.slice(1).map((e) => e.event),
    ['k', 'all'],
  );
  // Ordinary events carry a recovery-window id (dots; durable ids are 26 hex digits), one per send.
  t.true(a.events.slice(1).every((e) => /^[0-9a-z]{10}\.[0-9a-z]+\.[0-9a-z]+\.[0-9a-f]{6}$/.test(e.id ?? '')));
  t.is(a.named('all')[0]!.id, c.named('all')[0]!.id, 'the same id for every recipient of a send');
});

test('ids are compared as strings: 1 and "1" are the same user, bigint keeps precision', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const s = await RawStream.open(t, `${base}/connect?access-token=9007199254740993`);
  t.is(await plugin.hub.sendByUserId(9007199254740993n, 'big', 1), 1);
  t.true(await plugin.hub.isOnline('9007199254740993'));
  const one = await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is(await plugin.hub.sendByUserId(1, 'x', 1), 1);
  t.is(await plugin.hub.sendByUserId('1', 'x', 2), 1);
  await one.until(() => one.named('x').length === 2, 'two x');
  await s.next('big');
});

test('one send reaches a connection once even when targeted twice', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const s = await RawStream.open(t, `${base}/connect?access-token=5@1&channel=a`);
  t.is(await plugin.hub.sendByUserId([5, '5', 5], 'dup', 1), 1);
  t.is(await plugin.hub.sendByTenantId([1, '1'], 'dup', 2), 1);
  await plugin.hub.sendAll('end', 0);
  await s.next('end');
  t.is(s.named('dup').length, 2);
});

test('listening mode delivers only to connections listening to the event', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const hub = plugin.hub;
  const yes = await RawStream.open(t, `${base}/connect?access-token=1@1&listeners=bell,chat`);
  const no = await RawStream.open(t, `${base}/connect?access-token=2@1&listeners=chat`);
  t.is(await hub.sendAll('bell', 1, { listening: true }), 1);
  t.is(await hub.sendByTenantId(1, 'bell', 2, { listening: true }), 1);
  t.is(await hub.sendByUserId([1, 2], 'chat', 3, { listening: true }), 2);
  t.is(await hub.sendByUserId(2, 'bell', 4, { listening: true }), 0);
  t.is(await hub.sendByUserId(2, 'bell', 5), 1, 'without listening, the listener set does not matter');
  await no.next('bell');
  await yes.until(() => yes.named('chat').length === 1, 'chat');
  t.deepEqual(
    yes.named('bell').map((e) => e.data),
    ['1', '2'],
  );
  t.deepEqual(
    no.named('bell').map((e) => e.data),
    ['5'],
  );
  t.deepEqual(await hub.getUserIdsListening('bell'), ['1']);
  t.deepEqual((await hub.getUserIdsListening('chat', 1)).sort(), ['1', '2']);
  t.deepEqual(await hub.getUserIdsListening('chat', 2), []);
  t.deepEqual(
    (await hub.getUsersListening('bell')).map((u) => u.id),
    ['1'],
  );
});

test('multi-line strings become several data lines and arrive intact', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const s = await RawStream.open(t, `${base}/connect?access-token=1`);
  await plugin.hub.sendByUserId(1, 'text', 'line 1\nline 2\r\nline 3\rdata: not a field');
  t.is((await s.next('text')).data, 'line 1\nline 2\nline 3\ndata: not a field');
});

test('bad send arguments throw a TypeError at once', async (t) => {
  const { plugin } = await startPlugin(t);
  const hub = plugin.hub;
  await t.throwsAsync(() => hub.sendAll('', 1), { instanceOf: TypeError });
  await t.throwsAsync(() => hub.sendByUserId(undefined as never, 'e', 1), { instanceOf: TypeError });
  await t.throwsAsync(() => hub.sendByUserId({} as never, 'e', 1), { instanceOf: TypeError });
  await t.throwsAsync(() => hub.sendAll('bad\nname', 1), { code: 'ERR_SSE_INVALID_FIELD' } as never);
});

test('connection.send writes to that connection only', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const a = await RawStream.open(t, `${base}/connect?access-token=1`);
  const b = await RawStream.open(t, `${base}/connect?access-token=1`);
  const conn = plugin.hub.getLocalConnection(a.connectionId)!;
  t.true(await conn.send('only', { to: 'a' }));
  await plugin.hub.sendByConnectionId(b.connectionId, 'end', 1);
  await b.next('end');
  await a.next('only');
  t.is(b.named('only').length, 0);
});
