// disconnect.do over real HTTP: what navigator.sendBeacon sends (FormData, urlencoded, text)
// and JSON; the stream ends and the hub forgets the connection before `disconnect` fires.
import test, { type ExecutionContext } from 'ava';
import type { CloseReason, ConnectionInfo, Hub } from '../lib/index.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';
import { assertError, request, type Reply } from './helpers/reply.js';

/** What a `disconnect` listener saw, read inside the listener itself. */
interface Seen {
  id: string;
  reason: CloseReason;
  closed: boolean;
  infoInListener: ConnectionInfo | undefined;
  localInListener: boolean;
  onlineInListener: boolean;
  countInListener: number;
  /** Every index the connection was in, as seen from the listener. */
  indexesInListener: unknown;
  sessionDuration: number | undefined;
  duration: unknown;
  disconnectReason: unknown;
}

function recordDisconnects(hub: Hub, userId = '7'): Seen[] {
  const seen: Seen[] = [];
  hub.on('disconnect', (conn, reason) => {
    // Synchronous view first, then the async query API, both from inside the listener.
    const localInListener = hub.getLocalConnection(conn.id) !== undefined;
    const entry = {
      id: conn.id,
      reason,
      closed: conn.closed,
      localInListener,
      sessionDuration: conn.sessionDuration,
      duration: conn.attributes.get('duration'),
      disconnectReason: conn.attributes.get('disconnectReason'),
    };
    const indexes = Promise.all([
      hub.getUserIds(),
      hub.getAccessTokens(),
      hub.getTenantIds(),
      hub.getChannels(),
      hub.getUserIdsListening('bell'),
      hub.getConnections({ clientId: 'c-1' }),
    ]).then(([users, tokens, tenants, channels, listening, byClient]) => ({ users, tokens, tenants, channels, listening, byClient }));
    void Promise.all([hub.getConnectionById(conn.id), hub.isOnline(userId), hub.getConnectionCount(), indexes]).then(
      ([infoInListener, onlineInListener, countInListener, indexesInListener]) =>
        seen.push({ ...entry, infoInListener, onlineInListener, countInListener, indexesInListener }),
    );
  });
  return seen;
}

/** Waits (on events, not time) until the async part of the listener has recorded `n` entries. */
async function settled(seen: Seen[], n: number): Promise<void> {
  for (let i = 0; i < 100 && seen.length < n; i++) await new Promise((r) => setImmediate(r));
}

async function checkClientDisconnect(t: ExecutionContext, send: (base: string, id: string) => Promise<Reply>): Promise<void> {
  const { base, plugin, errors } = await startPlugin(t);
  const seen = recordDisconnects(plugin.hub);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7@1&clientId=c-1&channel=room&listeners=bell`);
  const id = stream.connectionId;
  t.deepEqual(await plugin.hub.getChannels(), ['room']);
  t.deepEqual(await plugin.hub.getUserIdsListening('bell'), ['7']);

  const reply = await send(base, id);
  t.is(reply.status, 200, reply.text);
  t.deepEqual(reply.body, { success: true, code: 200, data: { connectionId: id, closed: true, count: 1 }, message: null, errorMessage: null });
  // Gone by the time the answer arrives, and the stream ends.
  t.is(await plugin.hub.getConnectionById(id), undefined);
  await stream.waitEnd();

  await settled(seen, 1);
  t.is(seen.length, 1);
  const s = seen[0]!;
  t.is(s.id, id);
  t.is(s.reason, 'client');
  t.true(s.closed);
  t.false(s.localInListener);
  t.is(s.infoInListener, undefined);
  t.false(s.onlineInListener);
  t.is(s.countInListener, 0);
  t.deepEqual(s.indexesInListener, { users: [], tokens: [], tenants: [], channels: [], listening: [], byClient: [] });
  t.is(s.sessionDuration, 120);
  t.is(s.duration, 30);
  t.is(s.disconnectReason, 'hidden');
  t.false(await plugin.hub.isOnline(7));
  t.deepEqual(await plugin.hub.getUserIds(), []);
  t.deepEqual(errors, []);
}

const beaconFields = (id: string) => ({ connectionId: id, clientId: 'c-1', reason: 'hidden', duration: '30', sessionDuration: '120' });

test('disconnect.do with a FormData body (navigator.sendBeacon), without any login', async (t) => {
  await checkClientDisconnect(t, (base, id) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(beaconFields(id))) form.append(k, v);
    return request(`${base}/connect/disconnect.do`, { method: 'POST', body: form });
  });
});

test('disconnect.do with a urlencoded body', async (t) => {
  await checkClientDisconnect(t, (base, id) =>
    request(`${base}/connect/disconnect.do`, { method: 'POST', body: new URLSearchParams(beaconFields(id)) }),
  );
});

test('disconnect.do with a JSON body (numbers as numbers)', async (t) => {
  await checkClientDisconnect(t, (base, id) =>
    request(`${base}/connect/disconnect.do`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...beaconFields(id), duration: 30, sessionDuration: 120 }),
    }),
  );
});

test('disconnect.do with a text/plain body (sendBeacon of a string)', async (t) => {
  await checkClientDisconnect(t, (base, id) =>
    request(`${base}/connect/disconnect.do`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      body: new URLSearchParams(beaconFields(id)).toString(),
    }),
  );
});

test('disconnect.do with the connection id in the query string and an empty body', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const reply = await request(`${base}/connect/disconnect.do?connectionId=${stream.connectionId}`, { method: 'POST' });
  t.is(reply.status, 200, reply.text);
  await stream.waitEnd();
  t.is(await plugin.hub.getConnectionCount(), 0);
});

test('disconnect.do with a FormData body that also carries a file: the file is skipped', async (t) => {
  const { base, plugin, errors } = await startPlugin(t);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const conn = plugin.hub.getLocalConnection(stream.connectionId)!;
  const form = new FormData();
  form.append('connectionId', stream.connectionId);
  form.append('blob', new Blob(['x'.repeat(50_000)]), 'state.json');
  form.append('sessionDuration', '5');
  const reply = await request(`${base}/connect/disconnect.do`, { method: 'POST', body: form });
  t.is(reply.status, 200, reply.text);
  await stream.waitEnd();
  t.is(await plugin.hub.getConnectionCount(), 0);
  t.is(conn.sessionDuration, 5);
  t.deepEqual(errors, []);
});

test('disconnect of one of two connections: the user stays online and the other stream keeps receiving', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const seen = recordDisconnects(plugin.hub);
  const a = await RawStream.open(t, `${base}/connect?access-token=7`);
  const b = await RawStream.open(t, `${base}/connect?access-token=7`);
  const reply = await request(`${base}/connect/disconnect.do`, { method: 'POST', body: new URLSearchParams({ connectionId: a.connectionId }) });
  t.is(reply.status, 200, reply.text);
  await a.waitEnd();
  await settled(seen, 1);
  t.is(seen[0]?.id, a.connectionId);
  t.is(seen[0]?.infoInListener, undefined);
  t.true(seen[0]?.onlineInListener);
  t.is(seen[0]?.countInListener, 1);
  // Absent or invalid durations leave what the connection had.
  t.is(seen[0]?.sessionDuration, undefined);
  t.is(seen[0]?.duration, undefined);

  t.is(await plugin.hub.sendByUserId(7, 'still', 'here'), 1);
  t.is((await b.next('still')).data, 'here');
  t.false(b.ended);
});

test('invalid durations are ignored, not recorded', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const seen = recordDisconnects(plugin.hub);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7&sessionDuration=50`);
  const reply = await request(`${base}/connect/disconnect.do`, {
    method: 'POST',
    body: new URLSearchParams({ connectionId: stream.connectionId, duration: '-3', sessionDuration: 'abc' }),
  });
  t.is(reply.status, 200, reply.text);
  await settled(seen, 1);
  t.is(seen[0]?.sessionDuration, 50);
  t.is(seen[0]?.duration, undefined);
});

test('disconnect.do: unknown id is 404 (also a second time for the same id), missing id 400', async (t) => {
  const { base, plugin, errors } = await startPlugin(t);
  let disconnects = 0;
  plugin.hub.on('disconnect', () => disconnects++);
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  const url = `${base}/connect/disconnect.do`;

  assertError(
    t,
    await request(url, { method: 'POST', body: new URLSearchParams({ connectionId: 'no-such-connection' }) }),
    404,
    'ERR_SSE_UNKNOWN_CONNECTION',
  );
  assertError(t, await request(url, { method: 'POST', body: new URLSearchParams({ clientId: 'x' }) }), 400, 'ERR_SSE_BAD_REQUEST');
  assertError(t, await request(url, { method: 'POST' }), 400, 'ERR_SSE_BAD_REQUEST');
  t.is(disconnects, 0);
  t.false(stream.ended);
  t.is(await plugin.hub.getConnectionCount(), 1);

  const first = await request(url, { method: 'POST', body: new URLSearchParams({ connectionId: stream.connectionId }) });
  t.is(first.status, 200, first.text);
  assertError(
    t,
    await request(url, { method: 'POST', body: new URLSearchParams({ connectionId: stream.connectionId }) }),
    404,
    'ERR_SSE_UNKNOWN_CONNECTION',
  );
  await stream.waitEnd();
  t.is(disconnects, 1);
  t.deepEqual(errors, []);
});

test('a client that simply drops the stream is removed with reason client, and no error is reported', async (t) => {
  const { base, plugin, errors } = await startPlugin(t);
  const gone = new Promise<{ id: string; reason: CloseReason; online: boolean }>((resolve) => {
    plugin.hub.on('disconnect', (conn, reason) => resolve({ id: conn.id, reason, online: plugin.hub.getLocalConnection(conn.id) !== undefined }));
  });
  const stream = await RawStream.open(t, `${base}/connect?access-token=7`);
  await stream.close();
  const seen = await gone;
  t.deepEqual(seen, { id: stream.connectionId, reason: 'client', online: false });
  t.false(await plugin.hub.isOnline(7));
  t.deepEqual(errors, []);
});
