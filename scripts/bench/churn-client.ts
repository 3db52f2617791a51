// The flood of the churn benchmark (forked by scripts/bench/churn.ts): `users` users, each
// with one stream (raw TCP, its frames drained) on node `i % ports.length`, loop `join.do`
// then `leave.do` of `names` channel names that are new on every round, one call at a time
// per user, over keep-alive HTTP to the node that holds the stream. A 429 is counted. `mode`:
//   adversarial  goes on at once after a 429 (ignores `Retry-After`);
//   polite       waits a 429's `Retry-After` before its next call (as the browser client does);
//   baseline     the same loop and bodies to a path no endpoint has (`nope.do`: an at-once 404),
//                for what any request flood of that rate costs the server, channels aside.
// Bounded: `seconds`, then every user stops after its call in flight.
import http from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { serveIpc } from './ipc.js';

interface Totals {
  calls: number;
  ok: number;
  limited: number;
  other: number;
  failed: number;
  /** Seconds the users waited on `Retry-After`, summed. */
  waited: number;
  firstOther?: string;
}

const sockets: Socket[] = [];

/** Opens `GET /sse/connect?u=<user>`; resolves to the connection id of its `connect-finish`. */
function openStream(port: number, user: string): Promise<string> {
  const sock = tcpConnect(port, '127.0.0.1');
  sockets.push(sock);
  return new Promise((resolve, reject) => {
    let head = '';
    let done = false;
    sock.on('connect', () => sock.write(`GET /sse/connect?u=${user} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    sock.on('error', (err) => (done ? undefined : reject(err)));
    sock.on('data', (chunk: Buffer) => {
      if (done) return; // drained: presence notices of its own joins arrive here
      head += chunk.toString('latin1');
      const m = /"connectionId":"([^"]+)"/.exec(head);
      if (m !== null) {
        done = true;
        head = '';
        resolve(m[1]!);
      }
    });
  });
}

function post(agent: http.Agent, port: number, path: string, body: string): Promise<{ status: number; retryAfter: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: Number(res.headers['retry-after'] ?? NaN), text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function run(args: Record<string, unknown>): Promise<Totals & { seconds: number }> {
  const ports = args.ports as number[];
  const users = Number(args.users);
  const names = Number(args.names);
  const seconds = Number(args.seconds);
  const mode = String(args.mode);
  const honor = mode === 'polite';
  const agent = new http.Agent({ keepAlive: true, maxSockets: users });
  const ids = await Promise.all(Array.from({ length: users }, (_, i) => openStream(ports[i % ports.length]!, `flood${i}`)));
  const totals: Totals = { calls: 0, ok: 0, limited: 0, other: 0, failed: 0, waited: 0 };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const user = async (i: number): Promise<void> => {
    const port = ports[i % ports.length]!;
    const query = `?u=flood${i}`;
    for (let round = 0; performance.now() < deadline; round++) {
      const channels = Array.from({ length: names }, (_, k) => `room:f${i}:${round}:${k}`);
      for (const op of ['join', 'leave'] as const) {
        if (performance.now() >= deadline) return;
        totals.calls++;
        try {
          const path = mode === 'baseline' ? `/sse/connect/nope.do${query}` : `/sse/connect/${op}.do${query}`;
          const answer = await post(agent, port, path, JSON.stringify({ connectionId: ids[i], channels }));
          if (answer.status === 200 || (mode === 'baseline' && answer.status === 404)) totals.ok++;
          else if (answer.status === 429) {
            totals.limited++;
            if (honor && Number.isFinite(answer.retryAfter)) {
              const wait = Math.min(answer.retryAfter, (deadline - performance.now()) / 1000);
              totals.waited += Math.max(0, wait);
              if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
            }
          } else {
            totals.other++;
            totals.firstOther ??= `${answer.status} ${answer.text.slice(0, 200)}`;
          }
        } catch (err) {
          totals.failed++;
          totals.firstOther ??= String(err);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: users }, (_, i) => user(i)));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  for (const s of sockets.splice(0)) s.destroy();
  return { ...totals, seconds: elapsed };
}

serveIpc({ run, stop: () => process.exit(0) });
process.send?.({ ready: true });
