import type { Page } from 'playwright-core';
import { encodeFrame } from '../../lib/index.js';
import { browserTest, connected, createClient, nextConnect, nextDisconnect, openPage, startServer, useChromium, waitFor } from './harness.js';

useChromium();

/** Waits until the page recorded `n` events; answers them. */
async function events(page: Page, n: number): Promise<Window['__events']> {
  await page.waitForFunction((n) => window.__events.length >= n, n, { timeout: 10_000 });
  return page.evaluate(() => window.__events);
}

browserTest('events reach their listeners and the window event bus; other names do not', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  const connecting = nextConnect(hub);
  await createClient(page, 'u1');
  const conn = await connecting;
  t.deepEqual([...conn.listeners], ['bell']);
  t.true(conn.client.ack);
  t.is(conn.client.clientId, 'client-u1');
  t.is(await connected(page), conn.id);

  await page.evaluate(() => {
    window.addEventListener('bell', (e) => {
      const ev = e as CustomEvent<{ data: string; url: string }> & { data: string };
      window.__events.push({ type: `window:${ev.type}`, data: `${ev.detail.data}|${ev.data}|${ev.detail.url}`, lastEventId: '' });
    });
  });
  await hub.sendByUserId('u1', 'other', 'not listened to');
  await hub.sendByUserId('u1', 'bell', { n: 1 });
  await hub.sendByUserId('u1', 'bell', 'line 1\nline 2');
  const got = await events(page, 4);
  // Ordinary events carry the recovery window's id (MessageEvent.lastEventId, as EventSource sets it).
  const [firstId, secondId] = [got[0]!.lastEventId, got[2]!.lastEventId];
  t.regex(firstId, /^[0-9a-z]{10}\./);
  t.not(firstId, secondId);
  t.deepEqual(got, [
    { type: 'bell', data: '{"n":1}', lastEventId: firstId },
    { type: 'window:bell', data: '{"n":1}|{"n":1}|/sse/test', lastEventId: '' },
    { type: 'bell', data: 'line 1\nline 2', lastEventId: secondId },
    { type: 'window:bell', data: 'line 1\nline 2|line 1\nline 2|/sse/test', lastEventId: '' },
  ]);
});

browserTest('listen / unlisten with a name and function or a map keep the server listener set in step', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  await createClient(page, 'u2', { useWindowEventBus: false });
  const id = await connected(page);
  const conn = hub.getLocalConnection(id)!;

  const added = await page.evaluate(async () => {
    const push = (e: MessageEvent<string>): void => void window.__events.push({ type: e.type, data: e.data, lastEventId: '' });
    (window as unknown as { push: typeof push }).push = push;
    const a = await window.sse.listen('ring', push);
    const b = await window.sse.listen({ knock: [push], quiet: null });
    return { a, b, names: window.sse.listenerNames };
  });
  t.deepEqual(added.a.sort(), ['bell', 'ring']);
  t.deepEqual(added.b.sort(), ['bell', 'knock', 'quiet', 'ring']);
  t.deepEqual([...conn.listeners].sort(), ['bell', 'knock', 'quiet', 'ring']);

  t.is(await hub.sendByUserId('u2', 'ring', 1, { listening: true }), 1);
  t.is(await hub.sendByUserId('u2', 'knock', 2, { listening: true }), 1);
  t.deepEqual(
    (await events(page, 2)).map((e) => e.type),
    ['ring', 'knock'],
  );

  // Removing a function that is not registered changes nothing; removing the last one removes the name.
  const removed = await page.evaluate(async () => {
    const push = (window as unknown as { push: (e: MessageEvent<string>) => void }).push;
    const unchanged = await window.sse.unlisten('ring', () => undefined);
    const a = await window.sse.unlisten('ring', push);
    const b = await window.sse.unlisten({ knock: null });
    const c = await window.sse.unlisten(['quiet']);
    return { unchanged, a, b, c };
  });
  t.deepEqual(removed.unchanged.sort(), ['bell', 'knock', 'quiet', 'ring']);
  t.deepEqual(removed.a.sort(), ['bell', 'knock', 'quiet']);
  t.deepEqual(removed.c, ['bell']);
  t.deepEqual([...conn.listeners], ['bell']);
  t.is(await hub.sendByUserId('u2', 'ring', 3, { listening: true }), 0);
  await hub.sendByUserId('u2', 'ring', 'not listened to any more');
  await hub.sendByUserId('u2', 'bell', 'last');
  t.deepEqual(
    (await events(page, 3)).map((e) => `${e.type}:${e.data}`),
    ['ring:1', 'knock:2', 'bell:last'],
  );

  const bad = await page.evaluate(() =>
    window.sse
      .listen('a,b', () => undefined)
      .then(
        () => 'resolved',
        (e: Error) => e.name,
      ),
  );
  t.is(bad, 'TypeError');
});

browserTest('intercepts see application events first and can drop them', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  await page.evaluate(async () => {
    const url = '/sse/test/sse.js';
    const { sseEventListener } = (await import(url)) as typeof import('../../browser/index.js');
    const record = (e: MessageEvent<string>): void => void window.__events.push({ type: e.type, data: e.data, lastEventId: '' });
    window.sse = await sseEventListener(
      '/sse/test',
      { bell: record },
      { 'access-token': 'u3' },
      {
        useWindowEventBus: false,
        intercepts: [
          (e) => {
            window.__events.push({ type: `intercept:${e.type}`, data: e.data, lastEventId: '' });
            return e.data !== 'drop';
          },
        ],
      },
    );
  });
  await hub.sendByUserId('u3', 'bell', 'drop');
  await hub.sendByUserId('u3', 'bell', 'keep');
  t.deepEqual(
    (await events(page, 3)).map((e) => `${e.type}:${e.data}`),
    ['intercept:bell:drop', 'intercept:bell:keep', 'bell:keep'],
  );
});

browserTest('sendJson and uploadJson round trips; error answers reject with status and code', async (t) => {
  const { hub, origin, received } = await startServer(t);
  const page = await openPage(t, origin);
  await createClient(page, 'u4');
  const id = await connected(page);

  const answer = await page.evaluate(() => window.sse.sendJson('echo', { text: 'grüße', list: [1, 2] }));
  t.deepEqual(answer, {
    success: true,
    code: 200,
    data: { path: 'echo', body: { text: 'grüße', list: [1, 2] }, connectionId: id },
    message: null,
    errorMessage: null,
  });
  t.deepEqual(received, [{ system: 'test', path: 'echo', body: { text: 'grüße', list: [1, 2] }, connectionId: id }]);

  const uploaded = (await page.evaluate(() => {
    const form = new FormData();
    form.append('note', 'from the page');
    form.append('file', new Blob(['hello file'], { type: 'text/plain' }), 'a.txt');
    form.append('file', new Blob([new Uint8Array(3000)]), 'b.bin');
    return window.sse.uploadJson('files', form);
  })) as { data: { path: string; fields: unknown; files: { name: string; size: number; text: string }[] } };
  t.is(uploaded.data.path, 'files');
  t.deepEqual(uploaded.data.fields, { note: 'from the page' });
  t.deepEqual(
    uploaded.data.files.map((f) => [f.name, f.size]),
    [
      ['a.txt', 10],
      ['b.bin', 3000],
    ],
  );
  t.is(uploaded.data.files[0]!.text, 'hello file');
  t.is(hub.getLocalConnection(id)!.uploads, 1);

  const failures = await page.evaluate(async () => {
    const outcome = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => 'resolved',
        (e: Error & { code?: string; status?: number }) => ({ name: e.name, code: e.code, status: e.status }),
      );
    return {
      refused: await outcome(window.sse.sendJson('fail', {})),
      badPath: await outcome(window.sse.send('../etc', {})),
      notForm: await outcome(window.sse.upload('files', {} as FormData)),
    };
  });
  t.like(failures.refused, { name: 'SseRequestError', status: 409 });
  t.is(typeof (failures.refused as { code: unknown }).code, 'string');
  t.like(failures.badPath, { name: 'TypeError' });
  t.like(failures.notForm, { name: 'TypeError' });
});

browserTest('durable events are acknowledged in batches, de-duplicated by id, and resumed from after a reconnect', async (t) => {
  const { hub, origin } = await startServer(t, { qos: { file: ':memory:' } });
  const page = await openPage(t, origin);
  const ackBodies: { connectionId: string; ids: string[] }[] = [];
  page.on('request', (req) => {
    if (req.url().includes('/connect/ack.do')) ackBodies.push(req.postDataJSON() as { connectionId: string; ids: string[] });
  });
  await createClient(page, 'u5');
  const id = await connected(page);
  const acked: string[] = [];
  hub.on('qos-acked', (e) => {
    if (e.by === 'ack') acked.push(e.messageId);
  });

  const first = await hub.qos.sendByUserId('u5', 'bell', { n: 1 });
  const second = await hub.qos.sendByUserId('u5', 'bell', { n: 2 });
  await page.waitForFunction(() => window.__events.length >= 2);
  // A redelivery (as after a lost ack) is dropped, yet acknowledged again; ids that arrive
  // together are acknowledged in one request.
  hub
    .getLocalConnection(id)!
    .write(
      Buffer.concat([
        encodeFrame({ event: 'bell', id: first.messageId, data: { n: 1 } }),
        encodeFrame({ event: 'bell', id: second.messageId, data: { n: 2 } }),
      ]),
    );
  await hub.sendByUserId('u5', 'bell', 'plain');
  const seen = await events(page, 3);
  // An ordinary event has an id of the recovery window (dots): delivered, never acknowledged,
  // and not the durable resume point.
  t.regex(seen[2]!.lastEventId, /^[0-9a-z]{10}\.[0-9a-z]+\.[0-9a-z]+\.[0-9a-f]{6}$/);
  t.deepEqual(seen, [
    { type: 'bell', data: '{"n":1}', lastEventId: first.messageId },
    { type: 'bell', data: '{"n":2}', lastEventId: second.messageId },
    { type: 'bell', data: 'plain', lastEventId: seen[2]!.lastEventId },
  ]);
  t.is(await page.evaluate(() => window.sse.lastEventId), second.messageId);
  const ackedIds = (): string[] => ackBodies.flatMap((b) => b.ids);
  await waitFor(() => ackedIds().length === 4, 'the duplicates to be acknowledged');
  t.deepEqual(ackedIds().sort(), [first.messageId, first.messageId, second.messageId, second.messageId].sort());
  // The two redeliveries came in one chunk: one request acknowledges both (maybe with more).
  t.true(
    ackBodies.some((b) => b.ids.includes(first.messageId) && b.ids.includes(second.messageId)),
    'one request for both',
  );
  t.true(ackBodies.every((b) => b.connectionId === id));
  await waitFor(() => acked.length === 2, 'the server to take the acks');
  t.deepEqual(acked.sort(), [first.messageId, second.messageId].sort());

  // A reconnect resumes from the last durable id.
  const back = nextConnect(hub, (c) => c.userId === 'u5');
  await hub.disconnectByUserId('u5', { reconnect: true });
  t.is((await back).client.lastEventId, second.messageId);
  t.deepEqual((await page.evaluate(() => window.__events)).length, 3);
});

browserTest('acks to a server without durable delivery (404) are tolerated', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  const statuses: number[] = [];
  page.on('response', (res) => {
    if (res.url().includes('/connect/ack.do')) statuses.push(res.status());
  });
  await createClient(page, 'u6');
  const id = await connected(page);
  const conn = hub.getLocalConnection(id)!;
  conn.write(encodeFrame({ event: 'bell', id: '0000000000010000000000abcd', data: 'a' }));
  await waitFor(() => statuses.length === 1, 'the ack answer');
  t.deepEqual(statuses, [404]);
  conn.write(encodeFrame({ event: 'bell', id: '0000000000020000000000abcd', data: 'b' }));
  await hub.sendByUserId('u6', 'bell', 'c');
  t.deepEqual(
    (await events(page, 3)).map((e) => e.data),
    ['a', 'b', 'c'],
  );
  t.true(await page.evaluate(() => window.sse.isActive()));
  t.deepEqual(statuses, [404], 'no more acks to a server without the endpoint');
});

browserTest('online time: sse-set-duration sets the total, reconnects report it, close() beacons the durations', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  await createClient(page, 'u7');
  await connected(page);
  t.is(await hub.setDurationByUserId('u7', 100), 1);
  await page.waitForFunction(() => window.sse.sessionDuration >= 100);

  const back = nextConnect(hub, (c) => c.userId === 'u7');
  await hub.disconnectByUserId('u7', { reconnect: true });
  const conn = await back;
  t.true(conn.client.sessionDuration! >= 100);
  await connected(page);

  const gone = nextDisconnect(hub, (c) => c.id === conn.id);
  await page.evaluate(() => window.sse.close());
  await gone;
  t.is(await page.evaluate(() => window.sse.stateName), 'closed');
  const beacons = await page.evaluate(() => window.__beacons);
  t.is(beacons.length, 1);
  t.true(beacons[0]!.url.endsWith('/sse/test/connect/disconnect.do'));
  const form = Object.fromEntries(new URLSearchParams(beacons[0]!.body));
  t.like(form, { connectionId: conn.id, clientId: 'client-u7', reason: 'close' });
  t.true(Number(form.duration) >= 0);
  t.true(Number(form.sessionDuration) >= 100);
});

browserTest('a plain EventSource without the library still works', async (t) => {
  const { hub, origin } = await startServer(t);
  const page = await openPage(t, origin);
  const connecting = nextConnect(hub);
  const received = page.evaluate(
    () =>
      new Promise<{ finish: string; bell: string }>((resolve) => {
        const es = new EventSource('/sse/test/connect?access-token=plain&listeners=bell');
        let finish = '';
        es.addEventListener('connect-finish', (e) => (finish = e.data));
        es.addEventListener('bell', (e) => {
          es.close();
          resolve({ finish, bell: e.data });
        });
      }),
  );
  const conn = await connecting;
  await hub.sendByUserId('plain', 'bell', { hello: 'plain' });
  const got = await received;
  t.is(JSON.parse(got.finish).connectionId, conn.id);
  t.deepEqual(JSON.parse(got.bell), { hello: 'plain' });
  t.false(conn.client.ack);
});
