// The hand-tuned way of writing an event to a stream, shared by the raw-socket server and
// deliver-cost's raw way so that both write exactly alike: the frame as one HTTP/1.1 chunk,
// written straight to the socket; every socket written in a tick stays corked until the tick
// ends (one writev each).
import type { Socket } from 'node:net';

let corked: Socket[] = [];

/** `frame` as one HTTP/1.1 chunk. */
export function chunkOf(frame: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, Buffer.from('\r\n')]);
}

/** Writes `buf` to `socket`, corked until the end of the tick: the tick's first write queues the uncork of every socket written. */
export function corkedWrite(socket: Socket, buf: Buffer): void {
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
