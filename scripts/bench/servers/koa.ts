// (r) For reference: bare Koa, one middleware that opens the stream as raw node:http does
// (same headers, frame and socket settings; user from the `access-token` query parameter).
// What every Koa SSE plugin pays before any work of its own; only with `--only koa`.
import Koa from 'koa';
import { createServer, type ServerResponse } from 'node:http';
import { runServer } from './harness.js';

const HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
};
const all = new Set<ServerResponse>();
const byUser = new Map<string, ServerResponse>();

function frame(event: string, data: object): Buffer {
  return Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

const app = new Koa();
app.use((ctx) => {
  if (ctx.path !== '/sse/connect') return;
  const token = ctx.query['access-token'];
  const user = typeof token === 'string' ? token : '';
  const { req, res } = ctx;
  ctx.respond = false;
  req.socket.setNoDelay(true);
  req.socket.setKeepAlive(true);
  req.socket.setTimeout(0);
  res.writeHead(200, HEADERS);
  res.write(frame('connect-finish', { connectionId: user }));
  all.add(res);
  byUser.set(user, res);
  res.on('close', () => {
    all.delete(res);
    if (byUser.get(user) === res) byUser.delete(user);
  });
});
const handle = app.callback();

await runServer(
  createServer((req, res) => void handle(req, res)),
  {
    broadcast: (event, data) => {
      const buf = frame(event, data);
      for (const res of all) res.write(buf);
    },
    sendToUser: (userId, event, data) => {
      byUser.get(userId)?.write(frame(event, data));
    },
    count: () => all.size,
  },
);
