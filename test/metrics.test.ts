import test from 'ava';
import { collectMetrics } from '../lib/index.js';
import { postJson, startPlugin } from './helpers/server.js';
import { RawStream } from './helpers/stream.js';

/** The value of one sample line, e.g. `sse_connections{hub="test",...}`. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('metrics move as connections come and go, events are sent and durable messages acked', async (t) => {
  const { base, plugin } = await startPlugin(t, { qos: { file: ':memory:' } });
  const metrics = await collectMetrics(plugin.hub);
  const registry = metrics.registry;
  t.teardown(() => metrics.stop());
  const scrape = () => registry.metrics();
  t.is(sample(await scrape(), 'sse_connections'), 0);
  const a = await RawStream.open(t, `${base}/connect?access-token=1`);
  const b = await RawStream.open(t, `${base}/connect?access-token=2&ack=1`);
  let text = await scrape();
  t.is(sample(text, 'sse_connections'), 2);
  t.is(sample(text, 'sse_users'), 2);
  t.is(sample(text, 'sse_connects_total'), 2);
  await plugin.hub.sendAll('x', 'hello');
  text = await scrape();
  t.is(sample(text, 'sse_events_sent_total'), 2);
  t.true(sample(text, 'sse_bytes_sent_total') > 0);
  const sent = await plugin.hub.qos.sendByUserId(2, 'offer', 1);
  t.is(sample(await scrape(), 'sse_qos_pending'), 1);
  await b.next('offer');
  await postJson(`${base}/connect/ack.do?access-token=2`, { connectionId: b.connectionId, ids: [sent.messageId] });
  text = await scrape();
  t.is(sample(text, 'sse_qos_pending'), 0);
  t.is(sample(text, 'sse_qos_ack_seconds_count'), 1);
  await a.close();
  await plugin.hub.sendByConnectionId(b.connectionId, 'end', 1);
  await b.next('end');
  await b.close();
  await new Promise<void>((resolve) => {
    const check = async (): Promise<void> => {
      if ((await plugin.hub.getConnectionCount()) === 0) resolve();
      else setTimeout(() => void check(), 10);
    };
    void check();
  });
  text = await scrape();
  t.is(sample(text, 'sse_connections'), 0);
  t.is(sample(text, 'sse_disconnects_total'), 2);
  t.regex(text, /sse_connections\{hub="test",node="[^"]+"\} 0/);
});
