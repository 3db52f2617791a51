// (c) better-sse: one Session per stream, registered on one Channel; broadcasts through the
// Channel, targeted sends through a Map of sessions by user id. Each session starts with
// better-sse's default `retry: 2000` (storm.ts: the clients wait that long to come back).
import { createServer } from 'node:http';
import { createChannel, createSession, type Session } from 'better-sse';
import { runServer, streamUser } from './harness.js';

const channel = createChannel();
const byUser = new Map<string, Session>();

const server = createServer((req, res) => {
  const user = streamUser(req, res);
  if (user === undefined) return;
  void createSession(req, res).then((session) => {
    channel.register(session);
    byUser.set(user, session);
    session.once('disconnected', () => {
      if (byUser.get(user) === session) byUser.delete(user);
    });
  });
});

await runServer(server, {
  broadcast: (event, data) => void channel.broadcast(data, event),
  sendToUser: (userId, event, data) => {
    const session = byUser.get(userId);
    if (session?.isConnected) session.push(data, event);
  },
  count: () => channel.sessionCount,
});
