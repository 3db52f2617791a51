// (d) socket.io, websocket transport only: one room per user for targeted sends.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { runServer } from './harness.js';

const server = createServer();
const io = new Server(server, { transports: ['websocket'], serveClient: false });
io.on('connection', (socket) => {
  const user = socket.handshake.query.u;
  if (typeof user === 'string') void socket.join(user);
});

await runServer(server, {
  broadcast: (event, data) => void io.emit(event, data),
  sendToUser: (userId, event, data) => void io.to(userId).emit(event, data),
  count: () => io.engine.clientsCount,
  // Closes every client's transport (they reconnect by themselves). Not awaited: its promise
  // waits for the HTTP server's connections, which the harness closes next.
  close: () => {
    void io.close();
    return Promise.resolve();
  },
});
