// (b) The practical limit: a bare node:http SSE server. The same headers and frames as the
// library; one pre-encoded Buffer per event written to every response; a Set for broadcasts
// and a Map for targeted sends (a lookup + a write).
import { createServer, type ServerResponse } from 'node:http';
import { runServer, streamUser } from './harness.js';

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

const server = createServer((req, res) => {
  const user = streamUser(req, res);
  if (user === undefined) return;
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

await runServer(server, {
  broadcast: (event, data) => {
    const buf = frame(event, data);
    for (const res of all) res.write(buf);
  },
  sendToUser: (userId, event, data) => {
    byUser.get(userId)?.write(frame(event, data));
  },
  count: () => all.size,
});
