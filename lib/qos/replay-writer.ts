import { encodeFrame } from '../core/frame.js';
import type { Connection } from '../local/connection.js';
import type { DurableMessage } from './qos-cluster.js';

/**
 * The one writer of stored messages to a connection, whatever their source (this node's
 * store or a peer's). Frames are joined into chunks: one write per chunk, not per message,
 * and a chunk is small enough that buffer + chunk stays under the slow-reader limit; between
 * chunks it waits for the socket to drain, so a backlog never trips that limit.
 * `onWritten` sees the messages of each chunk once it is written. Resolves to false if the
 * connection closed or failed (the rest was not written).
 */
export async function writeMessages(
  conn: Connection,
  messages: readonly DurableMessage[],
  writeBufferLimit: number,
  onWritten: (written: DurableMessage[]) => void,
): Promise<boolean> {
  const drainAt = writeBufferLimit / 2;
  const chunkBytes = Math.max(1024, Math.min(64 * 1024, writeBufferLimit / 4));
  let frames: Buffer[] = [];
  let bytes = 0;
  let written: DurableMessage[] = [];
  const flush = async (): Promise<boolean> => {
    if (frames.length === 0) return !conn.closed;
    if (conn.bufferedAmount > drainAt) await conn.whenDrained();
    const ok = conn.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes), frames.length);
    if (ok) onWritten(written);
    frames = [];
    written = [];
    bytes = 0;
    return ok;
  };
  for (const m of messages) {
    if (conn.closed) return false;
    if (m.listening && !conn.listeners.has(m.event)) continue;
    const frame = encodeFrame({ event: m.event, data: m.data, id: m.id });
    frames.push(frame);
    written.push(m);
    bytes += frame.length;
    if (bytes >= chunkBytes && !(await flush())) return false;
  }
  return flush();
}
