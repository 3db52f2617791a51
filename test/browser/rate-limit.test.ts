// A page's calls past the server's per-connection rate limits (requestRateLimit, issue 26):
// the browser client sends a refused ack again after Retry-After, so that durable messages
// are acknowledged without waiting for a reconnect.
import { browserTest, connected, createClient, openPage, startServer, useChromium, waitFor } from './harness.js';

useChromium();

browserTest('acks refused by the rate limit (429) are sent again after Retry-After: every message is acknowledged', async (t) => {
  const { hub, origin } = await startServer(t, { qos: { file: ':memory:' }, requestRateLimit: { ack: { perSecond: 1, burst: 1 } } });
  const page = await openPage(t, origin);
  let refused = 0;
  let ackCalls = 0;
  page.on('response', (res) => {
    if (!res.url().includes('/connect/ack.do')) return;
    ackCalls++;
    if (res.status() === 429) refused++;
  });
  await createClient(page, 'u9');
  await connected(page);
  const acked = new Set<string>();
  hub.on('qos-acked', (e) => {
    if (e.by === 'ack') acked.add(e.messageId);
  });
  const ids: string[] = [];
  // One message per ack call (each waits for the previous call's answer): the third and fourth
  // come within the second after the bucket (one per second plus a burst of one) is spent.
  for (let n = 1; n <= 4; n++) {
    const calls = ackCalls;
    ids.push((await hub.qos.sendByUserId('u9', 'bell', { n })).messageId);
    await waitFor(() => ackCalls > calls, `ack call for message ${n}`);
  }
  t.true(refused > 0, 'the limit refused an ack');
  await waitFor(() => acked.size === 4, 'every message acknowledged after Retry-After', 10_000);
  t.deepEqual([...acked].sort(), [...ids].sort());
  t.is((await hub.qos.list({ userId: 'u9' }, 0, 10)).total, 0);
});
