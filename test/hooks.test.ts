// The plugin's hooks (as in the Java library): connect verification, the unauthorized answer,
// onConnect, and who decides a stream's lifetime.
import test from 'ava';
import type { ClientInfo, Connection, SseUser } from '../lib/index.js';
import { createHub, ssePlugin } from '../lib/index.js';
import { postJson, startPlugin, tokenUser } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

test('verifyConnect refuses with the app’s own answer, by client version', async (t) => {
  const seen: { user: SseUser; client: ClientInfo }[] = [];
  const { base, plugin } = await startPlugin(t, {
    verifyConnect: (ctx, user, client) => {
      seen.push({ user, client });
      if (client.clientVersion === '1.0') {
        ctx.status = 426;
        ctx.body = { upgrade: 'please' };
        ctx.set('X-Reason', 'old-client');
        return false;
      }
      return true;
    },
  });
  const old = await fetch(`${base}/connect?access-token=1&clientVersion=1.0`);
  t.is(old.status, 426);
  t.deepEqual(await old.json(), { upgrade: 'please' });
  t.is(old.headers.get('x-reason'), 'old-client');
  t.truthy(old.headers.get('x-sse-version'));
  const fresh = await RawStream.open(t, `${base}/connect?access-token=1&clientVersion=2.0`);
  t.is(fresh.status, 200);
  t.is(await plugin.hub.getConnectionCount(), 1);
  t.deepEqual(
    seen.map((s) => [s.user.id, s.client.clientVersion]),
    [
      ['1', '1.0'],
      ['1', '2.0'],
    ],
  );
});

test('verifyConnect returning false without an answer is 403; a throw is its status, or 500 reported', async (t) => {
  const { base, plugin, errors } = await startPlugin(t, {
    verifyConnect: (ctx, user) => {
      if (user.id === '1') return false;
      if (user.id === '2') ctx.throw(409, 'Busy');
      if (user.id === '3') throw new Error('database down');
      return undefined;
    },
  });
  const refused = await fetch(`${base}/connect?access-token=1`);
  t.is(refused.status, 403);
  t.like(await refused.json(), { code: 'ERR_SSE_FORBIDDEN', message: 'Connect refused' });
  const busy = await fetch(`${base}/connect?access-token=2`);
  t.is(busy.status, 409);
  t.like(await busy.json(), { message: 'Busy' });
  t.deepEqual(errors, [], 'a 4xx is an answer, not an error');
  const failed = await fetch(`${base}/connect?access-token=3`);
  t.is(failed.status, 500);
  t.like(await failed.json(), { code: 'ERR_SSE_INTERNAL' });
  t.is((errors[0] as Error).message, 'database down');
  t.is(await plugin.hub.getConnectionCount(), 0);
  const accepted = await RawStream.open(t, `${base}/connect?access-token=4`);
  t.is(accepted.status, 200);
});

test('onUnauthorized answers a request without a user on every endpoint; the default follows when it sets nothing', async (t) => {
  let calls = 0;
  const { base } = await startPlugin(t, {
    onUnauthorized: (ctx) => {
      calls++;
      if (ctx.query.mode === 'silent') return;
      if (ctx.query.mode === 'throw') throw new Error('hook broke');
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer');
      ctx.body = 'login first';
    },
  });
  const connect = await fetch(`${base}/connect`);
  t.is(connect.status, 401);
  t.is(await connect.text(), 'login first');
  t.is(connect.headers.get('www-authenticate'), 'Bearer');
  t.truthy(connect.headers.get('x-sse-version'));
  const listener = await fetch(`${base}/connect/addListener.do`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ connectionId: 'x', listener: ['a'] }),
  });
  t.is(await listener.text(), 'login first');
  const silent = await fetch(`${base}/connect?mode=silent`);
  t.is(silent.status, 401);
  t.like(await silent.json(), { code: 'ERR_SSE_UNAUTHORIZED' });
  const thrown = await fetch(`${base}/connect?mode=throw`);
  t.is(thrown.status, 500);
  t.is(calls, 4);
  // A caller with a user never reaches it.
  await RawStream.open(t, `${base}/connect?access-token=1`);
  t.is(calls, 4);
});

test('onConnect runs once the stream is open, with the connect parameters; its errors are reported and the stream stays', async (t) => {
  const seen: { id: string; indexed: boolean; written: number; query: Readonly<Record<string, unknown>> }[] = [];
  const { base, plugin, errors } = await startPlugin(t, {
    onConnect: async (connection: Connection, query) => {
      seen.push({
        id: connection.id,
        indexed: plugin.hub.getLocalConnection(connection.id) === connection,
        written: connection.eventsWritten,
        query,
      });
      if (query.fail === '1') throw new Error('onConnect failed');
    },
  });
  const s = await RawStream.open(t, `${base}/connect?access-token=1&shop=7&clientId=tab`);
  t.is(seen.length, 1);
  t.like(seen[0], { id: s.connectionId, indexed: true, written: 1 });
  t.like(seen[0]!.query, { shop: '7', clientId: 'tab', 'access-token': '1' });
  const posted = await RawStream.open(t, `${base}/connect?access-token=2`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ fromBody: 'yes' }),
  });
  t.like(seen[1]!.query, { fromBody: 'yes', 'access-token': '2' });
  t.is(seen[1]!.id, posted.connectionId);
  const failing = await RawStream.open(t, `${base}/connect?access-token=3&fail=1`);
  t.is(errors.length, 1);
  t.is((errors[0] as Error).message, 'onConnect failed');
  t.is(await plugin.hub.sendByConnectionId(failing.connectionId, 'still', 1), 1);
  await failing.next('still');
});

/** The stream's lifetime as connect-finish tells it (jitter 0). */
async function lifetimeOf(t: Parameters<typeof RawStream.open>[0], base: string, keepaliveTime?: number): Promise<number> {
  const s = await RawStream.open(t, `${base}/connect?access-token=1${keepaliveTime === undefined ? '' : `&keepaliveTime=${keepaliveTime}`}`);
  const finish = JSON.parse(s.events[0]!.data);
  return Math.round((finish.expiresAt - finish.serverTime) / 1000) * 1000;
}

test('keepaliveChoice: the client’s keepaliveTime, the server’s maxLifetimeMs, or a function; always within the clamp', async (t) => {
  const limits = { maxLifetimeMs: 600_000, minLifetimeMs: 20_000, lifetimeJitter: 0 };
  const client = await startPlugin(t, limits);
  t.is(await lifetimeOf(t, client.base, 60_000), 60_000);
  t.is(await lifetimeOf(t, client.base), 600_000);
  t.is(await lifetimeOf(t, client.base, 5_000), 20_000, 'raised to the minimum');
  t.is(await lifetimeOf(t, client.base, 3_600_000), 600_000, 'cut to the maximum');

  const server = await startPlugin(t, { ...limits, keepaliveChoice: 'server' });
  t.is(await lifetimeOf(t, server.base, 60_000), 600_000);

  const calls: [number | undefined, number][] = [];
  const custom = await startPlugin(t, {
    ...limits,
    keepaliveChoice: (clientMs, maxMs) => {
      calls.push([clientMs, maxMs]);
      return clientMs === undefined ? undefined : clientMs * 2;
    },
  });
  t.is(await lifetimeOf(t, custom.base, 60_000), 120_000);
  t.is(await lifetimeOf(t, custom.base), 600_000);
  t.is(await lifetimeOf(t, custom.base, 1_000_000), 600_000);
  t.deepEqual(calls, [
    [60_000, 600_000],
    [undefined, 600_000],
    [1_000_000, 600_000],
  ]);
});

test('hooks are checked when the plugin is created', (t) => {
  for (const key of ['verifyConnect', 'onUnauthorized', 'onConnect']) {
    t.throws(() => ssePlugin('/sse/x', { authenticate: tokenUser, [key]: 'yes' }), { instanceOf: TypeError, message: new RegExp(key) });
  }
  t.throws(() => createHub({ keepaliveChoice: 'browser' as never }), { instanceOf: TypeError, message: /keepaliveChoice/ });
  t.notThrows(() => ssePlugin('/sse/x', { authenticate: tokenUser, keepaliveChoice: 'server', onConnect: () => undefined }));
});

test('an app answer of the hooks never leaks into other endpoints: listeners still work after a refusal', async (t) => {
  const { base } = await startPlugin(t, { verifyConnect: (_ctx, _user, client) => client.channel !== 'closed' });
  t.is((await fetch(`${base}/connect?access-token=1&channel=closed`)).status, 403);
  const s = await RawStream.open(t, `${base}/connect?access-token=1&channel=open`);
  const answer = await postJson(`${base}/connect/addListener.do?access-token=1`, { connectionId: s.connectionId, listener: ['a'] });
  t.deepEqual(answer.body.data, { listener: ['a'] });
});
