// (b') A hand-tuned raw node:http server, for reference: the same head and frames as raw.ts,
// but each event is framed once as an HTTP/1.1 chunk and written straight to every socket
// (corked for the tick) -- what koa-sse-server's write path does, with nothing else around it.
import { createServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { runServer, streamUser } from './harness.js';
import { openRawHead } from './raw-streams.js';
import { chunkOf, corkedWrite } from './socket-write.js';

const all = new Set<Socket>();
const byUser = new Map<string, Socket>();

function chunk(event: string, data: object): Buffer {
  return chunkOf(Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
}

const server = createServer((req, res: ServerResponse) => {
  const user = streamUser(req, res);
  if (user === undefined) return;
  const socket = req.socket;
  openRawHead(req, res, user);
  all.add(socket);
  byUser.set(user, socket);
  res.on('close', () => {
    all.delete(socket);
    if (byUser.get(user) === socket) byUser.delete(user);
  });
});

await runServer(server, {
  broadcast: (event, data) => {
    const buf = chunk(event, data);
    for (const socket of all) corkedWrite(socket, buf);
  },
  sendToUser: (userId, event, data) => {
    const socket = byUser.get(userId);
    if (socket !== undefined) corkedWrite(socket, chunk(event, data));
  },
  count: () => all.size,
});
