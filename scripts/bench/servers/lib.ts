// (a) This library: Koa + ssePlugin with a trivial authenticate (the user id is the
// `access-token` query parameter). storm.ts sets BENCH_RECONNECT_MS (`reconnectTimeMs`) and
// BENCH_QOS_FILE (durable delivery on that SQLite file); dead-stream.ts BENCH_HEARTBEAT_MS and
// BENCH_DEAD_STREAM_MS (`heartbeatMs`, `deadStreamTimeoutMs`); fanout.ts --window off sets
// BENCH_RECOVERY=off (`recovery: false`). With BENCH_LIB_DIR, the library is
// loaded from that lib/ folder instead (connect-abba.ts: another commit's build beside this one).
import Koa from 'koa';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import type { SsePlugin } from '../../../lib/index.js';
import { runServer } from './harness.js';

// BENCH_LIB_BUILT: BENCH_LIB_DIR holds tsc's output (index.js), as the package ships it.
const { ssePlugin } = (await import(
  process.env.BENCH_LIB_DIR === undefined
    ? '../../../lib/index.js'
    : pathToFileURL(`${process.env.BENCH_LIB_DIR}/index.${process.env.BENCH_LIB_BUILT === '1' ? 'js' : 'ts'}`).href
)) as typeof import('../../../lib/index.js');

const app = new Koa();
let errors = 0;
app.on('error', (err: unknown) => {
  if (errors++ < 5) console.error('[lib server]', err);
});
// Built in `prepare`, just before listening: the durable store is locked by one process at a
// time, and storm.ts starts the next process while the previous one still runs (the new one
// waits for the lock: up to `lockTimeoutMs`, longer than a close of 15,000 streams here).
let plugin: SsePlugin | undefined;
const hub = (): SsePlugin['hub'] => plugin!.hub;

// Koa reports its own errors (app.on('error')): the request promise never rejects.
let handle: ReturnType<Koa['callback']> | undefined;
await runServer(
  createServer((req, res) => void handle!(req, res)),
  {
    prepare: () => {
      plugin = ssePlugin('/sse', {
        // The Java client's login parameter: a known connect parameter, not kept as an attribute.
        authenticate: (ctx) => {
          const token = ctx.query['access-token'];
          return typeof token === 'string' ? { id: token } : null;
        },
        ...(process.env.BENCH_RECONNECT_MS === undefined ? {} : { reconnectTimeMs: Number(process.env.BENCH_RECONNECT_MS) }),
        ...(process.env.BENCH_HEARTBEAT_MS === undefined ? {} : { heartbeatMs: Number(process.env.BENCH_HEARTBEAT_MS) }),
        ...(process.env.BENCH_DEAD_STREAM_MS === undefined ? {} : { deadStreamTimeoutMs: Number(process.env.BENCH_DEAD_STREAM_MS) }),
        ...(process.env.BENCH_QOS_FILE === undefined ? {} : { qos: { file: process.env.BENCH_QOS_FILE, lockTimeoutMs: 30_000 } }),
        // fanout.ts --window off: the recovery window of ordinary sends off (on by default).
        ...(process.env.BENCH_RECOVERY === 'off' ? { recovery: false as const } : {}),
      });
      app.use(plugin);
      handle = app.callback();
    },
    broadcast: (event, data) => void hub().sendAll(event, data),
    sendToUser: (userId, event, data) => void hub().sendByUserId(userId, event, data),
    // Not [...connections()].length: the orchestrators poll the count every 20 ms while streams
    // open, and a copy of 10,000 connections per poll was charged to this server's connect CPU.
    count: () => hub().stats.connects - hub().stats.disconnects,
    close: () => plugin!.close(),
    sendDurable: (userId, event, data) => hub().qos.sendByUserId(userId, event, data),
  },
);
