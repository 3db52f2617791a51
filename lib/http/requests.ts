import type { ConnectionCall } from './call.js';
import { ok } from './endpoint.js';

/**
 * `POST {base}/connect/message/{path}.do?connectionId=`: a request from the browser over its
 * connection, answered by the app's `onMessage` (the route exists only with it). The router
 * checked the connection (`connection: 'query'`) before the body can be read, so a stranger
 * cannot make the server buffer anything. Limited per connection (`requestRateLimit`: 429).
 */
export async function message(call: ConnectionCall): Promise<void> {
  const { ctx, env, connection } = call;
  // Before the body: a page over its rate costs no read.
  await env.requestRateLimit.take('message', connection.id);
  const body = await call.jsonValue();
  connection.countRequest('message');
  ok(ctx, env, await env.options.onMessage!(call.params.path!, ctx, connection, body));
}

/** `POST {base}/connect/upload/{path}.do?connectionId=`: multipart files for the app's `onUpload` (the route exists only with it). */
export async function upload(call: ConnectionCall): Promise<void> {
  const { ctx, env, connection } = call;
  await env.requestRateLimit.take('upload', connection.id);
  const { fields, files } = await call.multipart();
  connection.countRequest('upload');
  ok(ctx, env, await env.options.onUpload!(call.params.path!, ctx, connection, fields, files));
}
