// (r) For reference: bare Koa, one middleware that opens the stream as raw node:http does
// (same headers, frame and socket settings; user from the `access-token` query parameter).
// What every Koa SSE plugin pays before any work of its own; only with `--only koa`.
import Koa from 'koa';
import { createServer } from 'node:http';
import { runServer } from './harness.js';
import { openRawStream, rawAdapter } from './raw-streams.js';

const app = new Koa();
app.use((ctx) => {
  if (ctx.path !== '/sse/connect') return;
  const token = ctx.query['access-token'];
  ctx.respond = false;
  openRawStream(ctx.req, ctx.res, typeof token === 'string' ? token : '');
});
const handle = app.callback();

await runServer(
  createServer((req, res) => void handle(req, res)),
  rawAdapter,
);
