import test from 'ava';
import { createParser } from 'eventsource-parser';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHub } from '../lib/index.js';
import { eventually, introduce, SECRET } from './helpers/cluster.js';
import { startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

/**
 * A client that behaves like the browser client where it matters here: acks durable events,
 * obeys `connect-close {reconnect}` and `retry:`, and then connects to the next node (as a
 * load balancer would send it there) with its last event id.
 */
class MovingClient {
  readonly ids = new Set<string>();
  readonly closes: { reason: string; reconnect: boolean; retry: number | undefined }[] = [];
  connections = 0;
  #stopped = false;
  #abort = new AbortController();
  #lastId = '';

  constructor(
    readonly bases: string[],
    readonly user: string,
  ) {}

  async run(): Promise<void> {
    for (let i = 0; !this.#stopped; i++) {
      const base = this.bases[Math.min(i, this.bases.length - 1)]!;
      const retry = await this.#once(base);
      if (this.#stopped) return;
      await new Promise((r) => setTimeout(r, retry ?? 100));
    }
  }

  async #once(base: string): Promise<number | undefined> {
    let connectionId = '';
    let retry: number | undefined;
    const acks: Promise<unknown>[] = [];
    const res = await fetch(`${base}/connect?access-token=${this.user}&ack=1&reconnectOnClose=1&lastEventId=${this.#lastId}`, {
      signal: this.#abort.signal,
    }).catch(() => undefined);
    if (!res?.ok || !res.body) return 100;
    this.connections++;
    const parser = createParser({
      onRetry: (ms) => {
        retry = ms;
      },
      onEvent: (e) => {
        if (e.event === 'connect-finish') connectionId = JSON.parse(e.data).connectionId;
        if (e.event === 'connect-close') this.closes.push({ ...JSON.parse(e.data), retry });
        if (e.id) {
          this.ids.add(e.id);
          this.#lastId = e.id;
          acks.push(
            fetch(`${base}/connect/ack.do?access-token=${this.user}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ connectionId, ids: [e.id] }),
            }).catch(() => undefined),
          );
        }
      },
    });
    try {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // cut off: reconnect
    }
    await Promise.all(acks);
    return retry;
  }

  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
  }
}

test('graceful shutdown: clients move to another node of the cluster, spread in time, with no durable message lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-shutdown-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const node = async (i: number) => {
    const started = await startPlugin(t, {
      reconnectTimeMs: 400,
      qos: { file: join(dir, `node${i}.db`) },
      cluster: { secret: SECRET, host: '127.0.0.1', timeoutMs: 300, healthIntervalMs: 100 },
    });
    await started.plugin.hub.ready();
    return started;
  };
  const a = await node(0);
  const b = await node(1);
  introduce([a.plugin.hub, b.plugin.hub]);
  await eventually(() => a.plugin.hub.cluster!.peers().length === 1 && b.plugin.hub.cluster!.peers().length === 1, 'cluster formed');

  const client = new MovingClient([a.base, b.base], '21');
  const running = client.run();
  t.teardown(() => client.stop());
  await eventually(async () => (await b.plugin.hub.getConnectionCount()) === 1, 'client on a');

  // Durable messages from both nodes, before, during and after a's shutdown.
  const sent: string[] = [];
  for (let i = 0; i < 20; i++) sent.push((await a.plugin.hub.qos.sendByUserId(21, 'n', { from: 'a', i })).messageId);
  const sending = (async () => {
    for (let i = 0; i < 60; i++) {
      sent.push((await b.plugin.hub.qos.sendByUserId(21, 'n', { from: 'b', i })).messageId);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await new Promise((r) => setTimeout(r, 150));
  await a.plugin.close();
  await sending;

  await eventually(() => sent.every((id) => client.ids.has(id)), `all ${sent.length} durable messages`, 10_000);
  // Acknowledged to their owner: b's own messages, and a's (a is gone, its store keeps them
  // until a is back; those the client acked before a closed are done).
  await eventually(() => b.plugin.hub.qos.pendingCount({ userId: 21 }) === 0, 'b has nothing pending');
  client.stop();
  await running;
  t.like(client.closes[0], { reason: 'shutdown', reconnect: true });
  const retry = client.closes[0]!.retry!;
  t.true(retry >= 250 && retry <= 650, `retry ${retry} is spread over [250, 250 + reconnectTimeMs]`);
  t.true(client.connections >= 2, 'reconnected to b');
});

test('a restart: the store file is free while the streams are told goodbye; a send after close() is refused, none before lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-shutdown-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'node.db');
  const { base, plugin } = await startPlugin(t, { qos: { file } });
  const hub = plugin.hub;
  const pending = await hub.qos.sendByUserId(9, 'offer', 1); // user 9 is offline
  const stream = await RawStream.open(t, `${base}/connect?access-token=8&reconnectOnClose=1`);

  // The next process of a restart waits for the file's lock before it listens. Here it tries
  // while this process is saying goodbye to its stream (the `disconnect` of the shutdown).
  let nextProcess = '';
  hub.on('disconnect', (_connection, reason) => {
    if (reason !== 'shutdown') return;
    try {
      const next = createHub({ qos: { file, lockTimeoutMs: 1 } });
      nextProcess = 'opened the file';
      void next.close();
    } catch (err) {
      nextProcess = String((err as { code?: string }).code);
    }
  });
  const closing = plugin.close();
  await t.throwsAsync(hub.qos.sendByUserId(9, 'late', 2), { code: 'ERR_SSE_CLOSED' });
  await closing;
  t.is(nextProcess, 'opened the file');
  t.like(JSON.parse((await stream.next('connect-close')).data), { reason: 'shutdown', reconnect: true });
  await stream.until(() => stream.ended, 'the end of the stream');

  const after = createHub({ qos: { file } });
  t.teardown(() => after.close());
  t.truthy(await after.qos.status(pending.messageId), 'the send accepted before close() is in the file');
});
