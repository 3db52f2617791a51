import { parseListenerNames } from '../core/client-info.js';
import { readJsonObject } from './body.js';
import { connectionIdOf, ok, requireOwnConnection, type Endpoint } from './endpoint.js';

/** `POST {base}/connect/addListener.do` with `{connectionId, listener: [names]}`; answers `{listener: [current]}`. */
export const addListener: Endpoint = async (ctx, env) => {
  const { conn, names } = await readChange(ctx, env);
  ok(ctx, env, { listener: await env.hub.changeListeners(conn.id, names, true) });
};

/** `POST {base}/connect/removeListener.do`; answers `{listener: [current]}`. */
export const removeListener: Endpoint = async (ctx, env) => {
  const { conn, names } = await readChange(ctx, env);
  ok(ctx, env, { listener: await env.hub.changeListeners(conn.id, names, false) });
};

async function readChange(...[ctx, env]: Parameters<Endpoint>) {
  const body = await readJsonObject(ctx, env.options.jsonLimit);
  const id = connectionIdOf(body.connectionId ?? ctx.query.connectionId);
  const names = parseListenerNames(body.listener ?? body.listeners);
  const conn = await requireOwnConnection(ctx, env, id);
  return { conn, names };
}
