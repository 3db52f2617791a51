import test from 'ava';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import { encodeFrame, SseInvalidFieldError } from '../lib/index.js';

function parse(buf: Buffer): EventSourceMessage[] {
  const out: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (m) => out.push(m) });
  parser.feed(buf.toString('utf8'));
  return out;
}

test('a string with CR, LF, CRLF and NUL survives a round trip through a WHATWG parser', (t) => {
  // The WHATWG parser normalizes every line break in data to LF: that is what a browser sees.
  fc.assert(
    fc.property(
      fc
        .array(fc.oneof(fc.string(), fc.constantFrom('\r', '\n', '\r\n', '\0', ' ', ':', 'data: x', '\r\r', '\n\n')), { maxLength: 12 })
        .map((a) => a.join('')),
      (text) => {
        const events = parse(encodeFrame({ event: 'e', data: text }));
        t.is(events.length, 1);
        t.is(events[0]!.event, 'e');
        t.is(events[0]!.data, text.replace(/\r\n|\r/g, '\n'));
      },
    ),
    { numRuns: 500 },
  );
});

test('non-string data is sent as JSON, bigint without losing precision', (t) => {
  const [e] = parse(encodeFrame({ event: 'n', data: { id: 9007199254740993n, list: [1, 'a\nb'] } }));
  t.deepEqual(JSON.parse(e!.data), { id: '9007199254740993', list: [1, 'a\nb'] });
  t.is(parse(encodeFrame({ event: 'n', data: null }))[0]!.data, 'null');
  t.is(parse(encodeFrame({ event: 'n' }))[0]!.data, '');
});

test('id and retry fields are encoded', (t) => {
  const buf = encodeFrame({ event: 'x', id: 'm-1', retry: 3000, data: 'hi' });
  t.is(buf.toString(), 'event: x\nid: m-1\nretry: 3000\ndata: hi\n\n');
  t.is(parse(buf)[0]!.id, 'm-1');
});

test('event names and ids with CR, LF or NUL are refused with a coded error', (t) => {
  for (const bad of ['a\nb', 'a\rb', 'a\0b', '\r\n']) {
    t.throws(() => encodeFrame({ event: bad, data: 1 }), { instanceOf: SseInvalidFieldError, code: 'ERR_SSE_INVALID_FIELD' } as never);
    t.throws(() => encodeFrame({ event: 'ok', id: bad, data: 1 }), { instanceOf: SseInvalidFieldError });
  }
  t.throws(() => encodeFrame({ event: '', data: 1 }), { instanceOf: TypeError });
  t.throws(() => encodeFrame({ event: 'x', retry: -1 }), { instanceOf: TypeError });
});
