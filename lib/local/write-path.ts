import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

// The hot path of every send. An HTTP/1.1 stream is chunked: `res.write(frame)` makes Node write
// four pieces per call (the length in hex, CRLF, the frame, CRLF), each a buffered socket write,
// and allocate the hex string, for every recipient. Once the head is on the wire the stream
// writes the chunks itself instead. The frames a stream is written in one tick wait in its
// DirectWriter and leave at the next tick as one HTTP/1.1 chunk in one socket write; streams
// written the same frames in the same order (a burst of broadcasts) share that chunk, built
// once. One socket write per stream per tick instead of one per frame: Node's stream machinery
// (a buffered entry, a callback, a writev of many pieces) costs more than the bytes.

/** Streams written in this tick; flushed together at the next tick. */
let dirty: DirectWriter[] = [];
let flushScheduled = false;
/** The last single frame chunked in this tick, and its chunk (a broadcast frames it once). */
let chunkFrame: Buffer | undefined;
let chunkBytes: Buffer | undefined;
/** The last run of several frames chunked in this tick, and its chunk (a burst joins them once). */
let runFrames: Buffer[] | undefined;
let runBytes: Buffer | undefined;

function flushDirty(): void {
  const list = dirty;
  dirty = [];
  flushScheduled = false;
  for (let i = 0; i < list.length; i++) list[i]!.flush();
  // The caches live for one tick only: a caller may reuse a Buffer once it was flushed.
  chunkFrame = chunkBytes = runFrames = runBytes = undefined;
}

/** `<hex length>\r\n<frames…>\r\n`: one HTTP/1.1 chunk holding `frames` (`bytes` long in all). */
function chunkOf(frames: Buffer[], bytes: number): Buffer {
  if (frames.length === 1) {
    if (frames[0] === chunkFrame) return chunkBytes!;
  } else if (sameRun(frames, runFrames)) {
    return runBytes!;
  }
  const hex = bytes.toString(16);
  const out = Buffer.allocUnsafe(hex.length + bytes + 4);
  let at = out.write(hex, 0, 'latin1');
  out[at++] = 13;
  out[at++] = 10;
  for (let i = 0; i < frames.length; i++) at += frames[i]!.copy(out, at);
  out[at++] = 13;
  out[at] = 10;
  if (frames.length === 1) {
    chunkFrame = frames[0];
    chunkBytes = out;
  } else {
    runFrames = frames;
    runBytes = out;
  }
  return out;
}

function sameRun(a: Buffer[], b: Buffer[] | undefined): boolean {
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Writes one stream's frames straight to its socket, as HTTP/1.1 chunks: the frames of a
 * tick are queued and leave together at the next tick (or at {@link DirectWriter.flush}).
 */
export class DirectWriter {
  readonly socket: Socket;
  #frames: Buffer[] | undefined;
  #bytes = 0;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  /** Queues a non-empty frame for this tick's write (an empty chunk would end the body). */
  write(frame: Buffer): void {
    const frames = this.#frames;
    if (frames === undefined) {
      this.#frames = [frame];
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flushDirty);
      }
    } else {
      frames.push(frame);
    }
    this.#bytes += frame.length;
  }

  /** Bytes of this tick's frames, not yet written to the socket. */
  get queued(): number {
    return this.#bytes;
  }

  /** Bytes written but not yet taken by the kernel: the socket's buffer and this tick's queue. */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.#bytes;
  }

  /** Writes what is queued now (before the response's own end, which must come after it). */
  flush(): void {
    const frames = this.#frames;
    if (frames === undefined) return;
    const bytes = this.#bytes;
    this.#frames = undefined;
    this.#bytes = 0;
    // Destroyed since (a slow reader, the client left): nothing more goes to it.
    if (this.socket.writable) this.socket.write(chunkOf(frames, bytes));
  }
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
