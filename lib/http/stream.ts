import type { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { parseClientInfo } from '../core/client-info.js';
import { SseChannelDeniedError, SseForbiddenError } from '../core/errors.js';
import type { UserCall } from './call.js';
import { authorizeChannels } from './channels.js';
import { runAnsweringHook } from './hooks.js';
import { StreamRequestInfo } from './request-info.js';

/**
 * `GET|POST {base}/connect`: the router authenticated the caller; hands the response to the
 * hub as a stream. Parameters come from the query string, or for POST from a JSON body as well.
 */
export async function connect(call: UserCall): Promise<void> {
  const { ctx, env, user } = call;
  const request = ctx.request;
  const headers = ctx.req.headers;
  // GET: the query object as Koa parsed it (parseClientInfo only reads it; a copy cost ~0.5 µs).
  // POST: spread defines own properties, so a body key `__proto__` stays a parameter.
  const params: Record<string, unknown> = ctx.method === 'POST' ? { ...request.query, ...(await call.json()) } : request.query;
  const lastEventId = headers['last-event-id'];
  const client = parseClientInfo(params, typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : undefined);
  const verify = env.options.verifyConnect;
  if (verify !== undefined) {
    const { result, answered } = await runAnsweringHook(ctx, () => verify(ctx, user, client));
    if (result === false) {
      if (answered) return;
      throw new SseForbiddenError('Connect refused');
    }
  }
  let channels: string[] | undefined;
  if (env.options.authorizeChannel !== undefined && client.channel !== undefined) {
    // With the hook, the fixed `channel` is a membership like any other: refused, the stream is
    // refused (403), so that its sends, its log (`Last-Event-ID`) and its presence stay closed.
    // The restored `channels` are asked in the same round.
    const asked = client.channels === undefined ? [client.channel] : [client.channel, ...client.channels];
    const allowed = await authorizeChannels(ctx, env, user, asked);
    if (!allowed[0]) throw new SseChannelDeniedError(client.channel);
    if (client.channels !== undefined) channels = client.channels.filter((_, i) => allowed[i + 1]);
  } else if (client.channels !== undefined) {
    // Restore after a reconnect: the allowed channels are joined before `connect-finish`, the rest dropped.
    const allowed = await authorizeChannels(ctx, env, user, client.channels);
    channels = client.channels.filter((_, i) => allowed[i]);
  }
  const connection = env.hub.open({
    req: ctx.req,
    res: ctx.res,
    user,
    client,
    channels,
    headers: env.headers.fields,
    request: new StreamRequestInfo(request, (headers['user-agent'] ?? '').slice(0, 512)),
  });
  // A `disconnect` listener may ask for the address after the socket is gone: read it now.
  if (env.hub.listenerCount('disconnect') > 0) void connection.request.ip;
  // The hub owns the response from here on: Koa must not write or compress it.
  ctx.respond = false;
  releaseKoaContext(ctx.res);
  const onConnect = env.options.onConnect;
  if (onConnect !== undefined) {
    try {
      await onConnect(connection, params);
    } catch (err) {
      // The stream is open: a failing notification is reported, never a reason to cut it.
      env.hub.reportError(err);
    }
  }
}

/**
 * Koa waits for the end of every response to report errors (`onFinished(res, onerror)`): that
 * closure keeps the whole Koa context alive, and on-finished keeps four listeners (ee-first's
 * `onevent`) on the response and its socket. For a stream that lasts minutes that is a few KB
 * per connection for nothing: the hub handles the stream's end, and a client that goes away
 * is not an error. So when Koa's handler is the only one waiting (no other middleware uses
 * on-finished on this response), it is detached. A later `onFinished(res, fn)` still works:
 * it finds no pending listener and attaches afresh. The URL that Koa (parseurl) parsed and
 * cached on the request goes too; it is parsed again if anyone asks.
 */
function releaseKoaContext(res: ServerResponse): void {
  const req = res.req as (ServerResponse['req'] & { _parsedUrl?: unknown }) | undefined;
  if (req?._parsedUrl !== undefined) req._parsedUrl = undefined;
  const r = res as ServerResponse & { __onFinished?: { queue?: unknown[] | null } | null };
  const waiting = r.__onFinished;
  if (!Array.isArray(waiting?.queue) || waiting.queue.length !== 1) return;
  waiting.queue = null;
  r.__onFinished = null;
  detachOnevent(res, 'end');
  detachOnevent(res, 'finish');
  const socket = res.socket;
  if (socket !== null) {
    detachOnevent(socket, 'error');
    detachOnevent(socket, 'close');
  }
}

type Listener = (...args: unknown[]) => void;

/**
 * Removes ee-first's `onevent` listeners of one event. Reads the emitter's own listener
 * table (`_events`: a function or an array) instead of `listeners()`, which copies and
 * unwraps an array per event: 1.0–1.4 µs instead of 3.3–4.3 µs for the four events.
 */
function detachOnevent(emitter: EventEmitter, event: string): void {
  const entry = (emitter as EventEmitter & { _events?: Record<string, Listener | Listener[] | undefined> })._events?.[event];
  if (typeof entry === 'function') {
    if (entry.name === 'onevent') emitter.removeListener(event, entry);
  } else if (Array.isArray(entry)) {
    // Backwards: removeListener splices this very array.
    for (let i = entry.length - 1; i >= 0; i--) {
      const fn = entry[i]!;
      if (fn.name === 'onevent') emitter.removeListener(event, fn);
    }
  }
}
