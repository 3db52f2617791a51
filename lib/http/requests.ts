import { SseNotFoundError } from '../core/errors.js';
import { readJson, readMultipart } from './body.js';
import { connectionIdOf, ok, requireOwnConnection, type EndpointEnv } from './endpoint.js';
import type { Context } from 'koa';

/**
 * `POST {base}/connect/message/{path}.do?connectionId=`: a request from the browser over its
 * connection, answered by the app's `onMessage`. The connection is checked before the body
 * is read, so a stranger cannot make the server buffer anything.
 */
export async function message(ctx: Context, env: EndpointEnv, path: string): Promise<void> {
  const handler = env.options.onMessage;
  if (handler === undefined) throw new SseNotFoundError(ctx.path);
  const conn = await requireOwnConnection(ctx, env, connectionIdOf(ctx.query.connectionId));
  const body = await readJson(ctx, env.options.jsonLimit);
  conn.countRequest('message');
  ok(ctx, env, await handler(path, ctx, conn, body));
}

/** `POST {base}/connect/upload/{path}.do?connectionId=`: multipart files for the app's `onUpload`. */
export async function upload(ctx: Context, env: EndpointEnv, path: string): Promise<void> {
  const handler = env.options.onUpload;
  if (handler === undefined) throw new SseNotFoundError(ctx.path);
  const conn = await requireOwnConnection(ctx, env, connectionIdOf(ctx.query.connectionId));
  const { fields, files } = await readMultipart(ctx, {
    totalBytes: env.options.uploadLimit,
    maxFiles: env.options.uploadMaxFiles,
  });
  conn.countRequest('upload');
  ok(ctx, env, await handler(path, ctx, conn, fields, files));
}
