// (a) This library: Koa + ssePlugin with a trivial authenticate (the user id is the
// `access-token` query parameter).
import Koa from 'koa';
import { createServer } from 'node:http';
import { ssePlugin } from '../../../lib/index.js';
import { runServer } from './harness.js';

const plugin = ssePlugin('/sse', {
  // The Java client's login parameter: a known connect parameter, not kept as an attribute.
  authenticate: (ctx) => {
    const token = ctx.query['access-token'];
    return typeof token === 'string' ? { id: token } : null;
  },
});
const app = new Koa();
let errors = 0;
app.on('error', (err: unknown) => {
  if (errors++ < 5) console.error('[lib server]', err);
});
app.use(plugin);
const hub = plugin.hub;

// Koa reports its own errors (app.on('error')): the request promise never rejects.
const handle = app.callback();
await runServer(
  createServer((req, res) => void handle(req, res)),
  {
    broadcast: (event, data) => void hub.sendAll(event, data),
    sendToUser: (userId, event, data) => void hub.sendByUserId(userId, event, data),
    count: () => [...hub.connections()].length,
  },
);
