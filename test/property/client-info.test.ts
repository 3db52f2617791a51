// Property-based tests of the connect parameters (lib/core/client-info.ts): the query string
// or JSON body of every stream, the first outside input the server reads. On any input it
// answers a bounded, valid ClientInfo or a 400 ERR_SSE_BAD_REQUEST, never another error,
// never a prototype change; what the browser client sends reads back unchanged.
import test from 'ava';
import fc from 'fast-check';
import { isChannelName } from '../../lib/core/channels.js';
import { CONNECT_PARAMETERS, parseClientInfo, type ClientInfo } from '../../lib/core/client-info.js';
import { SseBadRequestError } from '../../lib/core/errors.js';

const KNOWN = [...CONNECT_PARAMETERS];
const HOSTILE = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

/** Parameter values as a query string (strings, repeated: arrays) or a JSON body (any JSON value) gives them. */
const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }),
  fc.constantFrom('1', 'true', '0', '', ' ', ',', 'a,b,,c', '-1', 'NaN', 'Infinity', '1e400', '\r\n', 'x\0y', 'room:1,room:2'),
  fc.jsonValue({ maxDepth: 2 }),
);
const key = fc.oneof(fc.constantFrom(...KNOWN, ...HOSTILE), fc.string({ maxLength: 12 }), fc.string({ minLength: 120, maxLength: 140 }));

/** Parameters as an object with own properties only (`__proto__` too, as JSON.parse makes them). */
const params = fc.array(fc.tuple(key, value), { maxLength: 40 }).map((entries) => {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
});
const header = fc.option(fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('a\nb', 'x\0', '123-abc')), { nil: undefined });

const protoKeys = (): string[] => Object.getOwnPropertyNames(Object.prototype).sort();

function assertBounded(t: import('ava').ExecutionContext, info: ClientInfo): void {
  t.true(info.listeners.length <= 256);
  t.is(new Set(info.listeners).size, info.listeners.length);
  for (const name of info.listeners) t.true(name.length >= 1 && name.length <= 128 && !/[\r\n\0,]/.test(name), JSON.stringify(name));
  for (const [k, max] of [
    ['clientId', 128],
    ['clientVersion', 64],
    ['screen', 64],
    ['locationHref', 2048],
    ['lastEventId', 128],
  ] as const) {
    const v = info[k];
    if (v !== undefined) t.true(typeof v === 'string' && v.length <= max, `${k}: ${JSON.stringify(v)}`);
  }
  if (info.lastEventId !== undefined) t.false(/[\r\n\0]/.test(info.lastEventId));
  for (const k of ['accessTime', 'keepaliveTime', 'sessionDuration'] as const) {
    const v = info[k];
    if (v !== undefined) t.true(Number.isFinite(v) && v >= 0, `${k}: ${v}`);
  }
  // The fixed channel and the restored ones obey the one rule of channel names.
  if (info.channel !== undefined) t.true(isChannelName(info.channel), `channel ${JSON.stringify(info.channel)}`);
  if (info.channels !== undefined) {
    t.true(info.channels.length >= 1 && info.channels.length <= 256);
    for (const c of info.channels) t.true(isChannelName(c), JSON.stringify(c));
  }
  const attributes = Object.keys(info.attributes);
  t.true(attributes.length <= 32);
  for (const k of attributes) {
    t.false(KNOWN.includes(k));
    t.true(k.length <= 128);
    const v = Object.getOwnPropertyDescriptor(info.attributes, k)!.value as unknown;
    t.true(typeof v === 'string' && v.length <= 1024);
  }
  t.is(typeof info.ack, 'boolean');
}

test('any parameters: a bounded, valid ClientInfo, or 400 ERR_SSE_BAD_REQUEST; never another error, never a prototype change', (t) => {
  const before = protoKeys();
  fc.assert(
    fc.property(params, header, (p, h) => {
      let info: ClientInfo;
      try {
        info = parseClientInfo(p, h);
      } catch (err) {
        t.true(err instanceof SseBadRequestError, `${String(err)} for ${JSON.stringify(p)}`);
        t.is((err as SseBadRequestError).status, 400);
        return;
      }
      assertBounded(t, info);
      t.is(Object.getPrototypeOf(info.attributes), Object.prototype);
      t.is(({} as Record<string, unknown>).polluted, undefined);
    }),
    { numRuns: 3000 },
  );
  t.deepEqual(protoKeys(), before);
});

test('`__proto__` and other hostile names are plain attributes', (t) => {
  const p = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": "c", "toString": "s", "clientId": "me"}') as Record<string, unknown>;
  const info = parseClientInfo(p);
  t.deepEqual(Object.keys(info.attributes).sort(), ['__proto__', 'constructor', 'toString']);
  t.is(Object.getOwnPropertyDescriptor(info.attributes, '__proto__')?.value, '{"polluted":1}');
  t.is((info.attributes as { polluted?: unknown }).polluted, undefined);
  t.is(({} as { polluted?: unknown }).polluted, undefined);
  t.is(info.clientId, 'me');
});

/** What the browser client puts in its connect URL, as the query parser hands it over (strings). */
const sent = fc.record(
  {
    clientId: fc.string({ minLength: 1, maxLength: 128 }),
    clientVersion: fc.string({ minLength: 1, maxLength: 64 }),
    listeners: fc.uniqueArray(
      fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() === s && !/[\r\n\0,]/.test(s)),
      { minLength: 1, maxLength: 20 },
    ),
    channels: fc.uniqueArray(
      fc.string({ minLength: 1, maxLength: 40 }).filter((s) => isChannelName(s) && !s.includes(',')),
      { minLength: 1, maxLength: 20 },
    ),
    keepaliveTime: fc.nat(),
    sessionDuration: fc.nat(),
    ack: fc.boolean(),
    lastEventId: fc.string({ minLength: 1, maxLength: 128 }).filter((s) => !/[\r\n\0]/.test(s)),
    attributes: fc.dictionary(
      fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !KNOWN.includes(k) && !HOSTILE.includes(k)),
      fc.string({ maxLength: 100 }),
      { maxKeys: 10 },
    ),
  },
  { requiredKeys: ['listeners', 'ack', 'attributes'] },
);

test('round trip: what the browser client sends reads back unchanged', (t) => {
  fc.assert(
    fc.property(sent, (s) => {
      const query: Record<string, unknown> = { ...s.attributes, listeners: s.listeners.join(','), ack: s.ack ? '1' : '0' };
      if (s.clientId !== undefined) query.clientId = s.clientId;
      if (s.clientVersion !== undefined) query.clientVersion = s.clientVersion;
      if (s.channels !== undefined) query.channels = s.channels.join(',');
      if (s.keepaliveTime !== undefined) query.keepaliveTime = String(s.keepaliveTime);
      if (s.sessionDuration !== undefined) query.sessionDuration = String(s.sessionDuration);
      if (s.lastEventId !== undefined) query.lastEventId = s.lastEventId;
      const info = parseClientInfo(query);
      t.deepEqual(info.listeners, s.listeners);
      t.is(info.ack, s.ack);
      t.is(info.clientId, s.clientId);
      t.is(info.clientVersion, s.clientVersion);
      t.deepEqual(info.channels, s.channels);
      t.is(info.keepaliveTime, s.keepaliveTime);
      t.is(info.sessionDuration, s.sessionDuration);
      t.is(info.lastEventId, s.lastEventId);
      t.deepEqual({ ...info.attributes }, s.attributes);
    }),
    { numRuns: 1000 },
  );
});
