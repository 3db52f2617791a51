import { parseClientInfo } from '../client-info.js';
import { readJsonObject } from './body.js';
import { requireUser, type Endpoint } from './endpoint.js';

/**
 * `GET|POST {base}/connect`: authenticates, then hands the response to the hub as a stream.
 * Parameters come from the query string, or for POST from a JSON body as well.
 */
export const connect: Endpoint = async (ctx, env) => {
  const user = await requireUser(ctx, env);
  const params: Record<string, unknown> = { ...ctx.query };
  if (ctx.method === 'POST') Object.assign(params, await readJsonObject(ctx, env.options.jsonLimit));
  const client = parseClientInfo(params, ctx.get('last-event-id') || undefined);
  env.hub.open({
    req: ctx.req,
    res: ctx.res,
    user,
    client,
    request: { ip: ctx.ip, domain: ctx.hostname, userAgent: ctx.get('user-agent').slice(0, 512) },
  });
  // The hub owns the response from here on: Koa must not write or compress it.
  ctx.respond = false;
};
