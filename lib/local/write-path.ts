import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

// The hot path of every send. An HTTP/1.1 stream is chunked: `res.write(frame)` makes Node write
// four pieces per call (the length in hex, CRLF, the frame, CRLF), each a buffered socket write,
// and allocate the hex string, for every recipient. Once the head is on the wire the stream
// writes the whole chunk itself instead: the same bytes, framed once per frame (a broadcast
// writes one Buffer to every socket), one socket write per recipient. Sockets written in one
// tick are corked and uncorked together in one nextTick, so a burst of events leaves as one
// writev per socket.

/** Sockets corked by a write in this tick; uncorked together at the next tick. */
let corked: Socket[] = [];
let flushScheduled = false;
/** The last frame written in this tick and its HTTP/1.1 chunk (a broadcast frames it once). */
let chunkFrame: Buffer | undefined;
let chunkBytes: Buffer | undefined;

function flushCorked(): void {
  const list = corked;
  corked = [];
  flushScheduled = false;
  // The chunk cache lives for one tick only: a caller may reuse a Buffer once it was flushed.
  chunkFrame = chunkBytes = undefined;
  for (let i = 0; i < list.length; i++) list[i]!.uncork();
}

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  process.nextTick(flushCorked);
}

/** `<hex length>\r\n<frame>\r\n`: one HTTP/1.1 chunk. */
function chunkOf(frame: Buffer): Buffer {
  if (frame === chunkFrame) return chunkBytes!;
  const hex = frame.length.toString(16);
  const out = Buffer.allocUnsafe(hex.length + frame.length + 4);
  let at = out.write(hex, 0, 'latin1');
  out[at++] = 13;
  out[at++] = 10;
  at += frame.copy(out, at);
  out[at++] = 13;
  out[at] = 10;
  chunkFrame = frame;
  chunkBytes = out;
  scheduleFlush();
  return out;
}

/** Writes a frame as one HTTP/1.1 chunk straight to the socket, corked until the next tick. */
export function writeChunk(socket: Socket, frame: Buffer): void {
  if (!socket.writableCorked) {
    socket.cork();
    corked.push(socket);
    scheduleFlush();
  }
  socket.write(chunkOf(frame));
}

/** Node's private fields that tell whether a chunked response may be written to its socket directly. */
interface Http1Response {
  _headerSent?: boolean;
  outputData?: unknown[];
}

/**
 * The socket, if chunks may go to it directly: HTTP/1.1 chunked response, head already on the
 * wire, nothing of it still queued in the response, socket assigned to it. Otherwise (HTTP/2,
 * HTTP/1.0, before the first write) writes must go through `res.write`.
 */
export function directSocketOf(response: ServerResponse): Socket | undefined {
  const res = response as ServerResponse & Http1Response;
  const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null;
  if (
    socket !== null &&
    res._headerSent === true &&
    res.chunkedEncoding === true &&
    Array.isArray(res.outputData) &&
    res.outputData.length === 0 &&
    socket._httpMessage === res &&
    !res.writableEnded
  ) {
    return socket;
  }
  return undefined;
}
