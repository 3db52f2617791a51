import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

// The hot path of every send. An HTTP/1.1 stream is chunked: `res.write(frame)` makes Node write
// four pieces per call (the length in hex, CRLF, the frame, CRLF), each a buffered socket write,
// and allocate the hex string, for every recipient. Once the head is on the wire the stream
// writes the chunks itself instead. The frames a stream is written in one tick wait in its
// DirectWriter and leave at the next tick as one HTTP/1.1 chunk in one socket write; streams
// written the same frames in the same order (a burst of broadcasts) share that chunk, built
// once. One socket write per stream per tick instead of one per frame: Node's stream machinery
// (a buffered entry, a callback, a writev of many pieces) costs more than the bytes. A long
// run of frames that no other stream shares is written frame by frame instead (corked, each
// frame's chunk shared), so that no tick copies every stream's bytes once more.

/** Streams written in this tick; flushed together at the next tick. */
let dirty: DirectWriter[] = [];
let flushScheduled = false;
/**
 * The chunks built in this tick, each for a run of frames (one frame, or the frames a stream
 * got in the tick, in order): streams written the same run share one chunk. A few runs are
 * kept, so that streams getting a few different runs (a `listening` filter, a targeted send
 * amid broadcasts) still share them.
 */
let runs: { frames: Buffer[]; chunk: Buffer }[] = [];
const RUNS_KEPT = 8;
/** A run longer than this not found among those kept is written frame by frame (each frame's chunk shared), not joined per stream. */
const JOIN_MAX = 16 * 1024;
/** The chunk of each single frame of this tick, for runs written frame by frame. */
let frameChunks: Map<Buffer, Buffer> | undefined;

function flushDirty(): void {
  const list = dirty;
  dirty = [];
  flushScheduled = false;
  for (let i = 0; i < list.length; i++) list[i]!.flush();
  // The caches live for one tick only: a caller may reuse a Buffer once it was flushed.
  runs = [];
  frameChunks = undefined;
}

/** `<hex length>\r\n<frames…>\r\n`: one HTTP/1.1 chunk holding `frames` (`bytes` long in all). */
function chunkOf(frames: Buffer[], bytes: number): Buffer {
  const hex = bytes.toString(16);
  const out = Buffer.allocUnsafe(hex.length + bytes + 4);
  let at = out.write(hex, 0, 'latin1');
  out[at++] = 13;
  out[at++] = 10;
  for (let i = 0; i < frames.length; i++) at += frames[i]!.copy(out, at);
  out[at++] = 13;
  out[at] = 10;
  return out;
}

/** The chunk of a run kept in this tick, or undefined. */
function keptRun(frames: Buffer[]): Buffer | undefined {
  for (let r = 0; r < runs.length; r++) {
    const kept = runs[r]!.frames;
    if (kept.length !== frames.length) continue;
    let same = true;
    for (let i = 0; i < frames.length && same; i++) same = kept[i] === frames[i];
    if (same) return runs[r]!.chunk;
  }
  return undefined;
}

/** Writes a run of frames to a socket: its shared chunk in one write, or frame by frame when it is long and not shared. */
function writeRun(socket: Socket, frames: Buffer[], bytes: number): void {
  let chunk = keptRun(frames);
  if (chunk === undefined && (frames.length === 1 || bytes <= JOIN_MAX)) {
    chunk = chunkOf(frames, bytes);
    if (runs.length === RUNS_KEPT) runs.shift();
    runs.push({ frames, chunk });
  }
  if (chunk !== undefined) {
    socket.write(chunk);
    return;
  }
  // A long run this stream alone gets: a chunk per frame, each built once for every stream.
  const chunks = (frameChunks ??= new Map<Buffer, Buffer>());
  socket.cork();
  for (const frame of frames) {
    let one = chunks.get(frame);
    if (one === undefined) chunks.set(frame, (one = chunkOf([frame], frame.length)));
    socket.write(one);
  }
  socket.uncork();
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
    if (this.socket.writable) writeRun(this.socket, frames, bytes);
  }
}

/** Node's private fields that tell whether a chunked response may be written to its socket directly. */
interface Http1Response {
  /** The head `writeHead` stored, as text; sent with the first write. */
  _header?: string | null;
  _headerSent?: boolean;
  /** False for a response that must have no body (HEAD, 204, 304). */
  _hasBody?: boolean;
  outputData?: unknown[];
}

/**
 * Sends the head that `writeHead` stored together with `frame` as the first HTTP/1.1 chunk, in
 * one socket write; false (nothing written) where Node must write them itself. This is what
 * `res.write` does for the first chunk (`OutgoingMessage#_send`: the head goes with the first
 * data, then `_headerSent`), without its four corked pieces and their writev a tick later:
 * ~3.5 µs of a stream's connect. Node still built the head (`writeHead`), so headers an app
 * set before, `Connection` and `Keep-Alive` are Node's own; and what a later `res.end()`
 * writes follows on the same socket. A frame given as ASCII text goes as one string, not
 * encoded into a Buffer first (~2 µs less).
 */
export function writeHeadWith(response: ServerResponse, frame: Buffer | string): boolean {
  const res = response as ServerResponse & Http1Response;
  const head = res._header;
  const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null;
  if (
    typeof head !== 'string' ||
    res._headerSent !== false ||
    res._hasBody === false ||
    res.chunkedEncoding !== true ||
    !Array.isArray(res.outputData) ||
    res.outputData.length !== 0 ||
    res.writableCorked !== 0 ||
    socket === null ||
    socket._httpMessage !== res ||
    !socket.writable
  ) {
    return false;
  }
  if (typeof frame === 'string') {
    const bytes = Buffer.byteLength(frame, 'utf8');
    // One byte per character: ASCII, the same bytes in latin1 (the head's encoding) as in UTF-8.
    if (bytes === frame.length) {
      res._headerSent = true;
      socket.write(bytes === 0 ? head : `${head}${bytes.toString(16)}\r\n${frame}\r\n`, 'latin1');
      return true;
    }
    frame = Buffer.from(frame, 'utf8');
  }
  res._headerSent = true;
  const headBytes = Buffer.from(head, 'latin1');
  socket.write(frame.length === 0 ? headBytes : Buffer.concat([headBytes, chunkOf([frame], frame.length)]));
  return true;
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
