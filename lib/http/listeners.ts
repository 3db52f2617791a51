import { parseListenerNames } from '../core/client-info.js';
import type { UserCall } from './call.js';
import { ok } from './endpoint.js';

/** `POST {base}/connect/addListener.do` with `{connectionId, listener: [names]}`; answers `{listener: [current]}`. */
export async function addListener(call: UserCall): Promise<void> {
  const { conn, names } = await readChange(call);
  ok(call.ctx, call.env, { listener: await call.env.hub.changeListeners(conn.id, names, true) });
}

/** `POST {base}/connect/removeListener.do`; answers `{listener: [current]}`. */
export async function removeListener(call: UserCall): Promise<void> {
  const { conn, names } = await readChange(call);
  ok(call.ctx, call.env, { listener: await call.env.hub.changeListeners(conn.id, names, false) });
}

async function readChange(call: UserCall) {
  const body = await call.json();
  const names = parseListenerNames(body.listener ?? body.listeners);
  const conn = await call.ownConnection(body.connectionId);
  return { conn, names };
}
