// The HTTP layer alone: the plugin's router (lib/http/router.ts, the route table) over a fake
// hub that records what the endpoints ask of it. Real HTTP on loopback, no hub, no stream.
import test, { type ExecutionContext } from 'ava';
import Koa from 'koa';
import { SseRedisUnavailableError } from '../../lib/core/errors.js';
import type { ConnectionHandle } from '../../lib/core/connection-handle.js';
import type { Hub } from '../../lib/hub.js';
import { defaultRedactUser } from '../../lib/http/admin-views.js';
import { ChannelRateLimit } from '../../lib/http/channel-rate-limit.js';
import type { EndpointEnv } from '../../lib/http/endpoint.js';
import { defaultWrapOkResponse } from '../../lib/http/response.js';
import { PublishKeys } from '../../lib/http/publish-keys.js';
import { RequestRateLimit } from '../../lib/http/request-rate-limit.js';
import { createSseRouter } from '../../lib/http/router.js';
import { serverHeaders } from '../../lib/http/server-headers.js';
import { MessageIdGenerator } from '../../lib/qos/message-id.js';
import { listen, tokenUser } from '../helpers/server.js';

/** The one connection the fake hub knows: user 7's. */
const CONN = { id: 'c-7', userId: '7', tenantId: undefined, accessToken: '7', remote: false } as unknown as ConnectionHandle;

interface FakeHub {
  acks: { connectionId: string; ids: readonly string[] }[];
  /** What `ack` does: answers a count, or throws. */
  onAck: () => number;
}

async function serve(t: ExecutionContext): Promise<{ origin: string; hub: FakeHub; errors: unknown[] }> {
  const fake: FakeHub = { acks: [], onAck: () => 1 };
  const hub = {
    hasQos: true,
    cluster: undefined,
    getLocalConnection: (id: string) => (id === CONN.id ? CONN : undefined),
    findConnection: () => Promise.resolve(undefined),
    ack: (conn: ConnectionHandle, ids: readonly string[]) => {
      fake.acks.push({ connectionId: conn.id, ids });
      return Promise.resolve(fake.onAck());
    },
  } as unknown as Hub;
  const env: EndpointEnv = {
    hub,
    options: {
      authenticate: tokenUser,
      wrapOkResponse: defaultWrapOkResponse,
      redactUser: defaultRedactUser,
      mapToConnectionVO: (_c, view) => view,
      mapToMessageVO: (_m, view) => view,
      jsonLimit: 1024,
      uploadLimit: 1024,
      uploadMaxFiles: 1,
      adminOrigins: [],
    },
    headers: serverHeaders(hub, false),
    channelRateLimit: new ChannelRateLimit(false),
    requestRateLimit: new RequestRateLimit(false),
    publish: new PublishKeys(undefined),
  };
  const app = new Koa();
  app.use(createSseRouter('/sse', env, () => undefined).router.routes());
  const { origin, errors } = await listen(t, app);
  return { origin, hub: fake, errors };
}

const post = (origin: string, path: string, body: unknown): Promise<Response> =>
  fetch(`${origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

const ids = new MessageIdGenerator('aaaaaaaa');

test("ack.do: the caller's own connection, ids checked, the hub asked, the answer in the envelope", async (t) => {
  const { origin, hub } = await serve(t);
  const id = ids.next();
  const res = await post(origin, '/sse/connect/ack.do?access-token=7', { connectionId: CONN.id, ids: [id] });
  t.is(res.status, 200);
  t.like(await res.json(), { success: true, code: 200, data: { acked: 1 } });
  t.deepEqual(hub.acks, [{ connectionId: CONN.id, ids: [id] }]);
});

test('ack.do refusals: no user 401, another user 403, unknown connection 404, bad ids 400; the hub is not asked', async (t) => {
  const { origin, hub } = await serve(t);
  const body = { connectionId: CONN.id, ids: [ids.next()] };
  const codes = async (path: string, b: unknown): Promise<[number, string]> => {
    const res = await post(origin, path, b);
    return [res.status, ((await res.json()) as { code: string }).code];
  };
  t.deepEqual(await codes('/sse/connect/ack.do', body), [401, 'ERR_SSE_UNAUTHORIZED']);
  t.deepEqual(await codes('/sse/connect/ack.do?access-token=8', body), [403, 'ERR_SSE_FORBIDDEN']);
  t.deepEqual(await codes('/sse/connect/ack.do?access-token=7', { ...body, connectionId: 'nope' }), [404, 'ERR_SSE_UNKNOWN_CONNECTION']);
  t.deepEqual(await codes('/sse/connect/ack.do?access-token=7', { ...body, ids: ['not-an-id'] }), [400, 'ERR_SSE_BAD_REQUEST']);
  t.deepEqual(hub.acks, []);
});

test('a failure of the hub is a 5xx in our words by code, reported to the app; an unknown path is a JSON 404 of the router', async (t) => {
  const { origin, hub, errors } = await serve(t);
  hub.onAck = () => {
    throw new SseRedisUnavailableError('Durable ack', { cause: new Error('connect ECONNREFUSED 10.0.0.9:6379') });
  };
  const res = await post(origin, '/sse/connect/ack.do?access-token=7', { connectionId: CONN.id, ids: [ids.next()] });
  t.is(res.status, 503);
  const body = (await res.json()) as { code: string; message: string };
  t.is(body.code, 'ERR_SSE_REDIS_UNAVAILABLE');
  t.false(body.message.includes('10.0.0.9'), "a dependency's text never reaches the client");
  t.is(errors.length, 1);
  const missing = await fetch(`${origin}/sse/connect/nothing.do`, { method: 'POST' });
  t.is(missing.status, 404);
});
