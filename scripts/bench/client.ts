// A load client process: opens a share of the connections to one server under test and
// records, for every event it receives, the latency from the sender's timestamp.
//   SSE: plain TCP sockets (Node's `onread`: one reused buffer, no 'data' events) with a
//   hand-written request and a byte scanner for `"t":` -- the cheapest reader we could write,
//   so that the client is rarely the bottleneck.
//   socket.io: the official socket.io-client, websocket transport only.
// Started by fanout.ts; commands come over IPC.
import { connect as tcpConnect, type Socket } from 'node:net';
import { io as ioConnect, type Socket as IoSocket } from 'socket.io-client';
import { serveIpc } from './ipc.js';
import { Histogram, nowUs } from './stats.js';

const [protocol, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (protocol !== 'sse' && protocol !== 'socketio') throw new Error('usage: client.ts sse|socketio PORT');

const hist = new Histogram();
let received = 0;
let lastAt = 0;
const sockets: Socket[] = [];
const ioSockets: IoSocket[] = [];

function onEvent(sentAt: number, now: number): void {
  received++;
  lastAt = now;
  hist.record(now - sentAt);
}

/** One buffer for every socket's reads (`onread`): reading allocates nothing per read. */
const readBuffer = Buffer.allocUnsafe(256 * 1024);
const MARK = Buffer.from('"t":');

/**
 * Scans received bytes for `"t":<digits>,` (every event's data starts with it; chunk-size
 * lines and other fields in between are skipped) and records one latency per hit. Returns
 * the tail that may hold a marker or number cut by the read boundary.
 */
function scan(buf: Buffer, end: number, now: number): Buffer | undefined {
  let i = 0;
  for (;;) {
    const j = buf.indexOf(MARK, i);
    if (j < 0 || j >= end) {
      const keep = Math.max(i, end - 3);
      return keep < end ? Buffer.from(buf.subarray(keep, end)) : undefined;
    }
    let k = j + 4;
    let t = 0;
    while (k < end) {
      const c = buf[k]!;
      if (c < 48 || c > 57) break;
      t = t * 10 + (c - 48);
      k++;
    }
    if (k >= end) return Buffer.from(buf.subarray(j, end));
    onEvent(t, now);
    i = k;
  }
}

/** Opens one SSE stream; resolves once the response head (200) arrived. */
function openSse(user: string, localAddress?: string, headTimeoutMs?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let head = true;
    // A server out of file descriptors may leave a connection in its backlog for good.
    const timer =
      headTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            if (!head) return;
            reject(new Error(`connect ${user}: no response head within ${headTimeoutMs} ms`));
            sock.destroy();
          }, headTimeoutMs);
    let carry: Buffer | undefined;
    const sock = tcpConnect({
      host: '127.0.0.1',
      port,
      ...(localAddress === undefined ? {} : { localAddress }),
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Uint8Array): boolean => {
          const now = nowUs();
          // A view of this read only: indexOf must not find stale bytes of earlier reads.
          let bytes = (buf as Buffer).subarray(0, n);
          if (carry !== undefined) {
            bytes = Buffer.concat([carry, bytes]);
            carry = undefined;
          }
          const end = bytes.length;
          if (head) {
            if (end < 12) {
              carry = Buffer.from(bytes.subarray(0, end));
              return true;
            }
            if (bytes.toString('latin1', 0, 12) !== 'HTTP/1.1 200') {
              reject(new Error(`connect ${user}: ${bytes.toString('latin1', 0, Math.min(end, 40))}`));
              sock.destroy();
              return false;
            }
            head = false;
            clearTimeout(timer);
            resolve();
          }
          carry = scan(bytes, end, now);
          return true;
        },
      },
    });
    sock.setNoDelay(true);
    sock.on('connect', () => {
      sock.write(`GET /sse/connect?access-token=${user} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    });
    sock.on('error', (err) => {
      if (head) reject(err);
    });
    sockets.push(sock);
  });
}

function openIo(user: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = ioConnect(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: 60_000,
      query: { u: user },
    });
    sock.on('connect', () => resolve());
    sock.on('connect_error', (err) => reject(err));
    sock.on('tick', (data: { t: number }) => onEvent(data.t, nowUs()));
    ioSockets.push(sock);
  });
}

serveIpc({
  /**
   * Opens users u<from> .. u<to-1>, `concurrency` handshakes in flight; SSE from the loopback
   * source addresses `localAddresses` in turn when given (a run that opens many streams again
   * and again gives each round fresh addresses, a few, each for ~1,000 streams at most: the
   * kernel's port search for a bound socket slows down as one address fills up or holds
   * TIME_WAIT sockets).
   */
  connect: async (a) => {
    const from = a.from as number;
    const to = a.to as number;
    const concurrency = a.concurrency as number;
    const local = a.localAddresses as string[] | undefined;
    const headTimeoutMs = a.headTimeoutMs as number | undefined;
    const open = protocol === 'sse' ? (user: string, i: number) => openSse(user, local?.[i % local.length], headTimeoutMs) : openIo;
    // Stop opening after this many failures (a server at its file limit refuses every further one).
    const stopAfter = (a.stopAfterFailures as number | undefined) ?? Infinity;
    let next = from;
    let failed = 0;
    let firstError: string | undefined;
    const start = nowUs();
    await Promise.all(
      Array.from({ length: Math.min(concurrency, to - from) }, async () => {
        while (next < to && failed < stopAfter) {
          const i = next++;
          try {
            await open(`u${i}`, i);
          } catch (err) {
            failed++;
            firstError ??= String(err);
          }
        }
      }),
    );
    return { start, end: nowUs(), opened: next - from - failed, failed, notTried: to - next, firstError };
  },
  /** Closes every connection this client opened (the warm-up before the empty-server baseline). */
  closeAll: () => {
    for (const s of sockets) s.destroy();
    for (const s of ioSockets) s.disconnect();
    sockets.length = 0;
    ioSockets.length = 0;
    return true;
  },
  expect: () => {
    hist.reset();
    received = 0;
    lastAt = 0;
    return true;
  },
  status: () => ({ received, lastAt }),
  result: () => {
    const cpu = process.cpuUsage();
    return { received, lastAt, hist: hist.toSparse(), cpu: cpu.user + cpu.system };
  },
  cpu: () => {
    const cpu = process.cpuUsage();
    return cpu.user + cpu.system;
  },
  stop: () => {
    for (const s of sockets) s.destroy();
    for (const s of ioSockets) s.disconnect();
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
process.send?.({ ready: true });
