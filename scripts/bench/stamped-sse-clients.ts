// SSE clients for the cluster benchmarks: raw sockets read by a byte scanner, so that the
// client's parsing never sets the rate. Every `"t":` (the send stamp, µs on the shared
// monotonic clock) in the stream is a receipt, timed into a histogram.
import net from 'node:net';
import { Histogram, nowUs } from './stats.js';

/** Calls `receipt(stamp)` for every `"t":<µs>` in `text` (a byte scanner: no JSON parsing). */
export function forEachStamp(text: string, receipt: (stamp: number) => void): void {
  for (let i = text.indexOf('"t":'); i >= 0; i = text.indexOf('"t":', i + 4)) {
    const t = Number.parseInt(text.slice(i + 4, i + 24), 10);
    if (Number.isFinite(t)) receipt(t);
  }
}

export class StampedSseClients {
  readonly hist = new Histogram();
  received = 0;
  lastAt = 0;
  readonly #sockets: net.Socket[] = [];

  /** Opens `GET /sse/connect?u=<user>` on 127.0.0.1:`port`; resolves at `connect-finish`. */
  async open(port: number, user: string): Promise<void> {
    const sock = net.connect(port, '127.0.0.1');
    this.#sockets.push(sock);
    await new Promise<void>((resolve, reject) => {
      let ready = false;
      sock.on('connect', () => sock.write(`GET /sse/connect?u=${user} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
      sock.on('error', reject);
      sock.on('data', (chunk: Buffer) => {
        const now = nowUs();
        const s = chunk.toString('latin1');
        if (!ready && s.includes('connect-finish')) {
          ready = true;
          resolve();
        }
        forEachStamp(s, (t) => {
          this.received++;
          this.lastAt = now;
          this.hist.record(now - t);
        });
      });
    });
  }

  reset(): void {
    this.hist.reset();
    this.received = 0;
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
  }
}
