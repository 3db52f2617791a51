// Routing benchmark: the plugin's per-request cost on the connect path (open a stream, read
// its first frame, leave) and on the request path (POST {base}/connect/message/x.do), for two
// builds of lib/ at once: the working tree and an older commit. Both servers stay up (warm)
// and the rounds alternate between them (ABBA), so machine noise hits both alike.
// Loopback only; bounded in count and time; stops by itself.
//   npx tsx scripts/bench/routing.ts [--before ab4c3e3] [--after <commit>] [--rounds 10] [--connects 1500] [--requests 4000]
// Without --after, "after" is the working tree. `--after ab4c3e3` (the same commit twice)
// shows the noise of the machine.
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkout, removeCheckout } from './checkout.js';
import { opt } from './cli.js';
import { Rpc } from './ipc.js';
import { median } from './stats.js';

const BEFORE = opt('before', 'ab4c3e3');
const AFTER = opt('after', '');
const ROUNDS = Number(opt('rounds', '10'));
const CONNECTS = Number(opt('connects', '1500'));
const REQUESTS = Number(opt('requests', '4000'));
const IN_FLIGHT = 16;
const WARMUP = 500;
const ROUND_TIMEOUT_MS = 60_000;

const here = dirname(fileURLToPath(import.meta.url));

interface Server {
  label: string;
  rpc: Rpc;
  port: number;
}

async function startServer(label: string, libDir: string): Promise<Server> {
  const child = fork(join(here, 'routing-server.ts'), [libDir], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const rpc = new Rpc(child, label);
  const port = await rpc.call<number>('port');
  return { label, rpc, port };
}

/** Runs `count` operations, `IN_FLIGHT` at a time; answers the wall time in ms. */
async function drive(count: number, op: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) await op(next++);
    }),
  );
  return performance.now() - started;
}

/** Opens a stream, waits for its `connect-finish` frame, answers the connection id, and leaves. */
function connectOnce(port: number, user: string, keep = false): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let done = false;
    const req = request({ host: '127.0.0.1', port, path: `/sse/bench/connect?access-token=${user}`, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`connect: HTTP ${res.statusCode}`));
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        const m = /"connectionId":"([^"]+)"/.exec(text);
        if (m === null || done) return;
        done = true;
        if (!keep) req.destroy();
        resolvePromise(m[1]!);
      });
      res.on('error', () => undefined);
    });
    req.on('error', (err) => (done ? undefined : reject(err)));
    req.setTimeout(ROUND_TIMEOUT_MS, () => reject(new Error('connect: timeout')));
    req.end();
  });
}

function postMessage(port: number, agent: Agent, connectionId: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const body = '{"n":1,"text":"hello"}';
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: 'POST',
        path: `/sse/bench/connect/message/x.do?connectionId=${connectionId}&access-token=poster`,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolvePromise() : reject(new Error(`message: HTTP ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Sample {
  opsPerSec: number;
  cpuUsPerOp: number;
}

async function measure(server: Server, count: number, op: (i: number) => Promise<void>, keepStreams: number): Promise<Sample> {
  await server.rpc.call('start');
  const ms = await drive(count, op);
  const cpuUs = await server.rpc.call<number>('stop', { keepStreams });
  return { opsPerSec: (count / ms) * 1000, cpuUsPerOp: cpuUs / count };
}

async function main(): Promise<void> {
  const dirs = [checkout(BEFORE), checkout(AFTER)];
  const servers: Server[] = [];
  try {
    servers.push(await startServer(`before (${BEFORE})`, join(dirs[0]!, 'lib')));
    servers.push(await startServer(`after (${AFTER || 'working tree'})`, join(dirs[1]!, 'lib')));
    const agents = new Map<Server, Agent>();
    const posterIds = new Map<Server, string>();
    for (const s of servers) {
      agents.set(s, new Agent({ keepAlive: true, maxSockets: IN_FLIGHT }));
      posterIds.set(s, await connectOnce(s.port, 'poster', true));
    }
    const connectOp = (s: Server) => (i: number) => connectOnce(s.port, `u${i % 500}`).then(() => undefined);
    const requestOp = (s: Server) => () => postMessage(s.port, agents.get(s)!, posterIds.get(s)!);
    for (const s of servers) {
      await drive(WARMUP, connectOp(s));
      await drive(WARMUP * 4, requestOp(s));
    }
    const paths = [
      { name: `connect: \`GET {base}/connect\` (${CONNECTS} streams per round, opened and left)`, count: CONNECTS, op: connectOp },
      { name: `request: \`POST {base}/connect/message/x.do\` (${REQUESTS} per round, keep-alive)`, count: REQUESTS, op: requestOp },
    ];
    // samples[path][round] = [before, after], measured back to back.
    const samples = paths.map(() => [] as [Sample, Sample][]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [p, path] of paths.entries()) {
        // ABBA: each build goes first in half of the rounds.
        const first = (round + p) % 2;
        const pair: Sample[] = [];
        for (const i of [first, 1 - first]) pair[i] = await measure(servers[i]!, path.count, path.op(servers[i]!), 1);
        samples[p]!.push(pair as [Sample, Sample]);
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
    console.log(
      `Node ${process.version}; before = ${BEFORE}, after = ${AFTER || 'working tree'}; ${ROUNDS} rounds, the two builds back to back in each (ABBA); ${IN_FLIGHT} in flight.`,
    );
    console.log('Medians over rounds; Δ = median of the per-round ratios after / before.\n');
    console.log('| path | before ops/s | after ops/s | Δ ops/s | before server CPU µs/op | after server CPU µs/op | Δ CPU/op |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const [p, path] of paths.entries()) {
      const pairs = samples[p]!;
      const ops = (i: 0 | 1) => median(pairs.map((x) => x[i].opsPerSec));
      const cpu = (i: 0 | 1) => median(pairs.map((x) => x[i].cpuUsPerOp));
      const dOps = median(pairs.map(([b, a]) => a.opsPerSec / b.opsPerSec - 1));
      const dCpu = median(pairs.map(([b, a]) => a.cpuUsPerOp / b.cpuUsPerOp - 1));
      console.log(
        `| ${path.name} | ${ops(0).toFixed(0)} | ${ops(1).toFixed(0)} | ${pct(dOps)} | ${cpu(0).toFixed(1)} | ${cpu(1).toFixed(1)} | ${pct(dCpu)} |`,
      );
    }
    for (const a of agents.values()) a.destroy();
  } finally {
    for (const s of servers) s.rpc.child.kill();
    for (const dir of dirs) removeCheckout(dir);
  }
}

await main();
