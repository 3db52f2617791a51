// (b') A hand-tuned raw node:http server, for reference: the same head and frames as raw.ts,
// but each event is framed once as an HTTP/1.1 chunk and written straight to every socket
// (corked for the tick) -- what koa-sse-server's write path does, with nothing else around it.
import { createServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { runServer, streamUser } from './harness.js';
import { openRawHead } from './raw-streams.js';

const all = new Set<Socket>();
const byUser = new Map<string, Socket>();
let corked: Socket[] = [];

function chunk(event: string, data: object): Buffer {
  const frame = Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  return Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, Buffer.from('\r\n')]);
}

function write(socket: Socket, buf: Buffer): void {
  if (!socket.writableCorked) {
    if (corked.length === 0) {
      process.nextTick(() => {
        const list = corked;
        corked = [];
        for (const s of list) s.uncork();
      });
    }
    socket.cork();
    corked.push(socket);
  }
  socket.write(buf);
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
    for (const socket of all) write(socket, buf);
  },
  sendToUser: (userId, event, data) => {
    const socket = byUser.get(userId);
    if (socket !== undefined) write(socket, chunk(event, data));
  },
  count: () => all.size,
});
