// The raw node:http way of holding SSE streams, shared by the raw server (b) and the bare Koa
// reference (r) so that both open and feed streams exactly alike: the library's headers and
// frames, one pre-encoded Buffer per event written to every response, a Set for broadcasts
// and a Map for targeted sends (a lookup + a write).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Adapter } from './harness.js';

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

/** The raw way of opening a stream, without indexes: socket settings, head, `connect-finish`. */
export function openRawHead(req: IncomingMessage, res: ServerResponse, user: string): void {
  req.socket.setNoDelay(true);
  req.socket.setKeepAlive(true);
  req.socket.setTimeout(0);
  res.writeHead(200, HEADERS);
  res.write(frame('connect-finish', { connectionId: user }));
}

/** Opens `res` as the stream of `user` ({@link openRawHead}) and indexes it. */
export function openRawStream(req: IncomingMessage, res: ServerResponse, user: string): void {
  openRawHead(req, res, user);
  all.add(res);
  byUser.set(user, res);
  res.on('close', () => {
    all.delete(res);
    if (byUser.get(user) === res) byUser.delete(user);
  });
}

/** Broadcasts and targeted sends over the streams opened by {@link openRawStream}. */
export const rawAdapter: Adapter = {
  broadcast: (event, data) => {
    const buf = frame(event, data);
    for (const res of all) res.write(buf);
  },
  sendToUser: (userId, event, data) => {
    byUser.get(userId)?.write(frame(event, data));
  },
  count: () => all.size,
};
