// A load client of the reconnect-storm benchmark (forked by storm.ts): holds a share of the
// streams and, when a stream ends, comes back the way the server's own clients would.
//   sse: EventSource semantics: wait the last `retry:` received (0 if none), reconnect; after a
//        failed attempt wait that long again (at least 100 ms) and try the next port. Streams
//        are plain TCP sockets with a small frame scanner (durable events, live-send latency).
//   socketio: socket.io-client with its default reconnection (1 s doubling to 5 s, ±50 % jitter).
// Durable messages (`{"d":j}`, j < 31) count once per stream and j since `arm`: a replay that
// writes one again (at-least-once) counts as a duplicate, not as a delivery.
// Commands come over IPC; nothing here decides when the storm starts or ends.
import { connect as tcpConnect, type Socket } from 'node:net';
import { io as ioConnect } from 'socket.io-client';
import { serveIpc } from './ipc.js';
import { Histogram, nowUs } from './stats.js';

const protocol = process.argv[2];
if (protocol !== 'sse' && protocol !== 'socketio') throw new Error('usage: storm-client.ts sse|socketio');

/** The event name of durable messages (servers/harness.ts `durable`, cluster-node.ts `durable`). */
const DURABLE = 'bell';

let ports: number[] = [];
let sources: string[] = ['127.0.0.1'];
let nextSource = 0;
const hist = new Histogram();
/** Receipt times (µs) of the first reconnection of each stream after `arm`. */
let backTimes: number[] = [];
/** Distinct durable messages (stream, j) since `arm`, and the time of the last new one. */
let durable = 0;
let lastDurableAt = 0;
/** Durable frames of a (stream, j) received before since `arm`. */
let duplicates = 0;
/** Distinct durable messages with (user + j) mod `mark.nodes` = `mark.node` (node loss: sent through the killed node). */
let marked = 0;
let mark: { nodes: number; node: number } | undefined;
let ticks = 0;
let attempts = 0;
let failures = 0;
let firstError: string | undefined;

interface Stream {
  user: number;
  /** Streams that came back since `arm`, or were never away. */
  back: boolean;
  retryMs: number;
  failed: number;
  /** Bit j: durable message j received since `arm`. */
  got: number;
  sock?: Socket;
}
const streams: Stream[] = [];
const ioSockets: Array<{ disconnect(): void }> = [];

function onOpen(s: Stream): void {
  if (!s.back) {
    s.back = true;
    backTimes.push(nowUs());
  }
}

function onFrame(frame: string, s: Stream, now: number): void {
  const retry = /^retry: ?(\d+)/m.exec(frame);
  if (retry) s.retryMs = Number(retry[1]);
  const event = /^event: ?([\w-]+)/m.exec(frame)?.[1];
  if (event === DURABLE) {
    const j = Number(/"d":(\d+)/.exec(frame)?.[1] ?? 31);
    const bit = j < 31 ? 1 << j : 0;
    if (bit !== 0 && (s.got & bit) !== 0) duplicates++;
    else {
      s.got |= bit;
      durable++;
      lastDurableAt = now;
      if (mark !== undefined && (s.user + j) % mark.nodes === mark.node) marked++;
    }
  } else if (event === 'tick') {
    const t = /"t":(\d+)/.exec(frame);
    if (t) {
      ticks++;
      hist.record(now - Number(t[1]));
    }
  }
}

/** Opens one SSE stream; resolves once it ended (the caller decides when to come back). */
function runSse(s: Stream, onHead: (ok: boolean) => void): Promise<void> {
  return new Promise((resolve) => {
    attempts++;
    const port = ports[(s.user + s.failed) % ports.length]!;
    const sock = tcpConnect({ host: '127.0.0.1', port, localAddress: sources[nextSource++ % sources.length] });
    s.sock = sock;
    let head = true;
    let text = '';
    let done = false;
    const end = (ok: boolean): void => {
      if (done) return;
      done = true;
      sock.destroy();
      if (head) onHead(false);
      else if (!ok) s.failed++;
      resolve();
    };
    sock.setEncoding('latin1');
    sock.on('connect', () => {
      sock.write(`GET /sse/connect?access-token=u${s.user}&u=u${s.user}&ack=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    });
    sock.on('data', (chunk: string) => {
      const now = nowUs();
      text += chunk;
      if (head) {
        if (text.length < 12) return;
        if (!text.startsWith('HTTP/1.1 200')) {
          firstError ??= `u${s.user}: ${text.slice(0, 40)}`;
          end(false);
          return;
        }
        head = false;
        onHead(true);
      }
      // Frames end with a blank line; the rest waits for the next read. A response that ends
      // (the chunked terminator) is a stream that ended, as for EventSource.
      const last = text.lastIndexOf('\n\n');
      if (last >= 0) {
        for (const frame of text.slice(0, last).split('\n\n')) onFrame(frame, s, now);
        text = text.slice(last + 2);
      }
      if (text.includes('\r\n0\r\n\r\n')) end(true);
    });
    sock.on('error', (err) => {
      firstError ??= String(err);
      end(false);
    });
    sock.on('close', () => end(true));
  });
}

/** One stream for its whole life: open, and come back after every end until `stop`. */
function sseStream(s: Stream): Promise<boolean> {
  return new Promise((opened) => {
    let first = true;
    void (async () => {
      for (;;) {
        await runSse(s, (ok) => {
          if (ok) {
            s.failed = 0;
            onOpen(s);
          } else {
            failures++;
            s.failed++;
          }
          if (first) {
            first = false;
            opened(ok);
          }
        });
        if (stopped) return;
        const wait = s.failed > 0 ? Math.max(100, s.retryMs) : s.retryMs;
        await new Promise((r) => setTimeout(r, wait));
      }
    })();
  });
}

function ioStream(s: Stream): Promise<boolean> {
  return new Promise((opened) => {
    let first = true;
    attempts++;
    const sock = ioConnect(`http://127.0.0.1:${ports[s.user % ports.length]!}`, {
      transports: ['websocket'],
      forceNew: true,
      timeout: 60_000,
      query: { u: `u${s.user}` },
    });
    sock.on('connect', () => {
      onOpen(s);
      if (first) {
        first = false;
        opened(true);
      }
    });
    sock.io.on('reconnect_attempt', () => attempts++);
    sock.io.on('reconnect_error', (err) => {
      failures++;
      firstError ??= String(err);
    });
    sock.on('connect_error', (err) => {
      firstError ??= String(err);
      if (first) {
        first = false;
        opened(false);
      }
    });
    sock.on('tick', (data: { t: number }) => {
      ticks++;
      hist.record(nowUs() - data.t);
    });
    ioSockets.push(sock);
  });
}

let stopped = false;

serveIpc({
  /** Opens users u<from> .. u<to-1> on `ports` (user k on port k mod length), `concurrency` at a time. */
  connect: async (a) => {
    ports = a.ports as number[];
    sources = a.sources as string[];
    const from = a.from as number;
    const to = a.to as number;
    let next = from;
    let opened = 0;
    await Promise.all(
      Array.from({ length: Math.min(a.concurrency as number, to - from) }, async () => {
        while (next < to) {
          const s: Stream = { user: next++, back: true, retryMs: 0, failed: 0, got: 0 };
          streams.push(s);
          if (await (protocol === 'sse' ? sseStream(s) : ioStream(s))) opened++;
        }
      }),
    );
    return { opened, failed: to - from - opened, firstError };
  },
  /** Where streams go from now on (a load balancer that took a dead node out). */
  setPorts: (a) => {
    ports = a.ports as number[];
    return true;
  },
  /**
   * The storm starts: every stream counts as away until it opens again; counters restart.
   * `mark` ({nodes, node}): durable messages to count apart as well (see `marked`).
   */
  arm: (a) => {
    for (const s of streams) {
      s.back = false;
      s.got = 0;
    }
    backTimes = [];
    durable = 0;
    lastDurableAt = 0;
    duplicates = 0;
    marked = 0;
    mark = a.mark as typeof mark;
    ticks = 0;
    attempts = 0;
    failures = 0;
    firstError = undefined;
    hist.reset();
    return true;
  },
  status: () => ({ back: backTimes.length, durable, ticks }),
  result: () => ({ backTimes, durable, lastDurableAt, duplicates, marked, ticks, hist: hist.toSparse(), attempts, failures, firstError }),
  stop: () => {
    stopped = true;
    for (const s of streams) s.sock?.destroy();
    for (const s of ioSockets) s.disconnect();
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
process.send?.({ ready: true });
