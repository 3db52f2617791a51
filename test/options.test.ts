// Options are checked in full when the plugin or hub is made: a typo in a key, a number given
// as a string, a misspelt enum value is a TypeError that names the option, says what was given
// and, for a likely typo, the name meant. Nothing starts (no port, no file) before that.
import test from 'ava';
import { createHub, ssePlugin, type HubOptions, type SsePluginOptions } from '../lib/index.js';

const authenticate = (): null => null;
const plugin = (options: Record<string, unknown>): unknown => ssePlugin('/sse/x', { authenticate, ...options } as SsePluginOptions);
const hub = (options: Record<string, unknown>): unknown => createHub(options as HubOptions);

test('an unknown key is refused with the nearest known name, at any depth', (t) => {
  t.throws(() => plugin({ heartbeatMS: 1000 }), { instanceOf: TypeError, message: 'Unknown option heartbeatMS: did you mean heartbeatMs?' });
  t.throws(() => plugin({ authorizeChanel: () => true }), { message: 'Unknown option authorizeChanel: did you mean authorizeChannel?' });
  t.throws(() => hub({ cluster: { peerz: ['a:1'] } }), { message: 'Unknown option cluster.peerz: did you mean cluster.peers?' });
  t.throws(() => hub({ cluster: { mdns: { ttl: 5 } } }), { message: /^Unknown option cluster\.mdns\.ttl/ });
  t.throws(() => hub({ presence: { leaveDelay: 5 } }), { message: 'Unknown option presence.leaveDelay: did you mean presence.leaveDelayMs?' });
  // Far from every name: no guess.
  t.throws(() => hub({ zzzzzzzzzzzz: 1 }), { message: 'Unknown option zzzzzzzzzzzz' });
  // A plugin-only option is unknown to a bare hub.
  t.throws(() => hub({ authenticate }), { message: /^Unknown option authenticate/ });
});

test('a wrong type says what was given', (t) => {
  t.throws(() => plugin({ heartbeatMs: '15000' }), { instanceOf: TypeError, message: 'heartbeatMs must be a number, got a string ("15000")' });
  t.throws(() => hub({ qos: { ttlMs: '60000', file: ':memory:' } }), { message: 'qos.ttlMs must be a number, got a string ("60000")' });
  t.throws(() => plugin({ onMessage: 'handler' }), { message: 'onMessage must be a function, got a string ("handler")' });
  t.throws(() => hub({ cluster: { peers: ['a:1', 2] } }), { message: 'cluster.peers[1] must be a string, got the number 2' });
  t.throws(() => hub({ cluster: 'on' }), { message: 'cluster must be an object, got a string ("on")' });
  t.throws(() => plugin({ serverIdHeader: true }), { message: /^serverIdHeader must be a string or one of false, got a boolean true/ });
  // Ranges are still checked where the defaults are applied, with the same wording.
  t.throws(() => hub({ heartbeatMs: -1 }), { message: 'heartbeatMs must be a positive number, got the number -1' });
  // A lifetime is stored and sent to peers as a time: Infinity is none (JSON makes it null).
  t.throws(() => hub({ qos: { ttlMs: Infinity, file: ':memory:' } }), {
    message: 'qos.ttlMs must be a positive finite number, got the number Infinity',
  });
});

test('a bad enum value lists the allowed ones and the nearest', (t) => {
  t.throws(() => hub({ cluster: { discovery: 'mdnz', secret: 'x'.repeat(32) } }), {
    instanceOf: TypeError,
    message: 'cluster.discovery must be one of "static", "mdns", "dns" or an object, got a string ("mdnz") (did you mean "mdns"?)',
  });
  t.throws(() => hub({ qos: { file: ':memory:', synchronous: 'full' } }), {
    message: /^qos\.synchronous must be one of "NORMAL", "FULL", got a string \("full"\) \(did you mean "FULL"\?\)$/,
  });
  t.throws(() => hub({ keepaliveChoice: 'browser' }), { message: /^keepaliveChoice must be one of "client", "server" or a function/ });
});

test('valid options pass, undefined values count as absent', async (t) => {
  const h = createHub({ heartbeatMs: 5000, keepaliveChoice: (ms) => ms, presence: { leaveDelayMs: 20_000 }, maxConnections: undefined });
  t.is(h.name, 'default');
  await h.close();
  const p = ssePlugin('/sse/ok', { authenticate, serverIdHeader: false, adminOrigins: ['https://admin.example.com'], jsonLimit: 1024 });
  await p.close();
  t.pass();
});
