// Closes that want the client back must not strand a page of the Java library, which takes
// every `connect-close` as final: such clients get a clean end instead, and come back.
import test from 'ava';
import { EventSource } from 'eventsource';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

test('a kick with reconnect: true ends a client without reconnectOnClose cleanly, with no connect-close', async (t) => {
  const { base, plugin } = await startPlugin(t);
  const java = await RawStream.open(t, `${base}/connect?access-token=1`);
  const ours = await RawStream.open(t, `${base}/connect?access-token=1&reconnectOnClose=1`);
  t.is(await plugin.hub.disconnectByUserId(1, { reconnect: true }), 2);
  await java.waitEnd();
  await ours.waitEnd();
  t.deepEqual(
    java.events.map((e) => e.event),
    ['connect-finish'],
  );
  t.like(JSON.parse((await ours.next('connect-close')).data), { reason: 'kick', reconnect: true });
});

test('a kick with reconnect: false and an eviction still send connect-close to every client', async (t) => {
  const { base, plugin } = await startPlugin(t, { clientIdMaxConnections: 1 });
  const kicked = await RawStream.open(t, `${base}/connect?access-token=1`);
  const evicted = await RawStream.open(t, `${base}/connect?access-token=2&clientId=c`);
  await RawStream.open(t, `${base}/connect?access-token=2&clientId=c`);
  await plugin.hub.disconnectByUserId(1);
  // (Reading to the end first: the helper's close() can hang on a stream the server ended but the test did not read out.)
  await kicked.waitEnd();
  await evicted.waitEnd();
  t.like(JSON.parse((await kicked.next('connect-close')).data), { reason: 'kick', reconnect: false });
  t.like(JSON.parse((await evicted.next('connect-close')).data), { reason: 'evicted', reconnect: false });
});

test('an EventSource comes back after an expiry and after a kick with reconnect', async (t) => {
  const { base, plugin } = await startPlugin(t, {
    reconnectTimeMs: 50,
    heartbeatMs: 50,
    maxLifetimeMs: 10_000,
    minLifetimeMs: 200,
    lifetimeJitter: 0,
  });
  const es = new EventSource(`${base}/connect?access-token=5&keepaliveTime=200`);
  t.teardown(() => es.close());
  const ids: string[] = [];
  const closes: string[] = [];
  es.addEventListener('connect-close', (e) => closes.push(e.data));
  const nextConnect = (): Promise<string> =>
    new Promise((resolve) =>
      es.addEventListener(
        'connect-finish',
        (e) => {
          ids.push(JSON.parse(e.data).connectionId);
          resolve(ids.at(-1)!);
        },
        { once: true },
      ),
    );
  await nextConnect();
  // Expired after 200 ms: the EventSource reconnects by itself.
  await nextConnect();
  const third = nextConnect();
  t.is(await plugin.hub.disconnectByConnectionId(ids[1]!, { reconnect: true }), 1);
  await third;
  t.is(new Set(ids).size, 3);
  t.deepEqual(closes, [], 'never told connect-close');
  t.not(es.readyState, EventSource.CLOSED);
});
