import { parseListenerNames } from '../core/client-info.js';
import { readJsonObject } from './body.js';
import type { Connection } from '../local/connection.js';
import { SseUnknownConnectionError } from '../core/errors.js';
import { RemoteConnection } from '../cluster/remote-connection.js';
import { connectionIdOf, ok, requireOwnConnection, type Endpoint, type EndpointEnv } from './endpoint.js';

/** `POST {base}/connect/addListener.do` with `{connectionId, listener: [names]}`; answers `{listener: [current]}`. */
export const addListener: Endpoint = async (ctx, env) => {
  const { conn, names } = await readChange(ctx, env);
  ok(ctx, env, { listener: await changeListeners(env, conn, names, true) });
};

/** `POST {base}/connect/removeListener.do`; answers `{listener: [current]}`. */
export const removeListener: Endpoint = async (ctx, env) => {
  const { conn, names } = await readChange(ctx, env);
  ok(ctx, env, { listener: await changeListeners(env, conn, names, false) });
};

async function readChange(...[ctx, env]: Parameters<Endpoint>) {
  const body = await readJsonObject(ctx, env.options.jsonLimit);
  const id = connectionIdOf(body.connectionId ?? ctx.query.connectionId);
  const names = parseListenerNames(body.listener ?? body.listeners);
  const conn = await requireOwnConnection(ctx, env, id);
  return { conn, names };
}

async function changeListeners(env: EndpointEnv, conn: Connection | RemoteConnection, names: string[], add: boolean): Promise<string[]> {
  if (conn instanceof RemoteConnection) {
    const current = await env.hub.cluster?.listeners(conn.id, names, add);
    if (current === undefined) throw new SseUnknownConnectionError(conn.id);
    return current;
  }
  return add ? env.hub.addListeners(conn, names) : env.hub.removeListeners(conn, names);
}
