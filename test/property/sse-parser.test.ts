// Property-based tests of the browser client's text/event-stream parser (browser/parser.ts), the
// part of the page that reads what the network gives it: against the server's own encoder
// (round trips), against a reference WHATWG parser (eventsource-parser) on arbitrary input in
// arbitrary chunks, and for bounds on what it emits.
import test from 'ava';
import { createParser } from 'eventsource-parser';
import fc from 'fast-check';
import { EventStreamParser, type ParsedEvent } from '../../browser/parser.js';
import { encodeFrame } from '../../lib/core/frame.js';

/** Splits `text` at the given (sorted, de-duplicated) cut points. */
function chunksOf(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const p of points) {
    out.push(text.slice(from, p));
    from = p;
  }
  out.push(text.slice(from));
  return out;
}

function parseAll(chunks: string[]): { events: ParsedEvent[]; retries: number[] } {
  const events: ParsedEvent[] = [];
  const retries: number[] = [];
  const parser = new EventStreamParser(
    (e) => events.push(e),
    (ms) => retries.push(ms),
  );
  for (const c of chunks) parser.feed(c);
  return { events, retries };
}

/** Text made mostly of the characters that matter to the format, so that the cases are interesting. */
const streamText = fc
  .array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.constantFrom(
          '\n',
          '\r',
          '\r\n',
          ':',
          ' ',
          'data',
          'data:',
          'data: ',
          'event:',
          'event: x',
          'id:',
          'id: 7',
          'retry:',
          'retry: 10',
          '\0',
          'x',
        ),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }) },
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(''))
  // A byte-order mark opens a stream only; the client's TextDecoder strips it before the parser.
  .filter((s) => !s.startsWith('\uFEFF'));

const cuts = fc.array(fc.nat(), { maxLength: 8 });

/** A name or id as the server may send one: anything without CR, LF or NUL. */
const field = fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !/[\r\n\0]/.test(s));
/** Event data as an app may send it: any text, line breaks of every kind included. */
const data = fc
  .array(fc.oneof(fc.string({ unit: 'binary', maxLength: 10 }), fc.constantFrom('\r', '\n', '\r\n', '\n\n', ' ', ':')), { maxLength: 10 })
  .map((a) => a.join(''));

test('round trip: frames the server encodes read back with the same event, data and id, however the bytes are cut', (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          event: fc.option(
            field.filter((s) => s !== ''),
            { nil: undefined },
          ),
          data,
          id: fc.option(field, { nil: undefined }),
        }),
        {
          minLength: 1,
          maxLength: 6,
        },
      ),
      cuts,
      (frames, at) => {
        const text = frames.map((f) => encodeFrame(f).toString('utf8')).join('');
        const { events } = parseAll(chunksOf(text, at));
        t.is(events.length, frames.length);
        let lastId = '';
        frames.forEach((f, i) => {
          const e = events[i]!;
          t.is(e.type, f.event ?? 'message');
          // Every line break becomes LF: what a browser's EventSource shows too.
          t.is(e.data, f.data.replace(/\r\n|\r/g, '\n'));
          t.is(e.id, f.id);
          if (f.id !== undefined) lastId = f.id;
          t.is(e.lastEventId, lastId);
        });
      },
    ),
    { numRuns: 1000 },
  );
});

test('any input, in any chunks, gives what a reference WHATWG parser gives (events and retry fields), and never throws', (t) => {
  fc.assert(
    fc.property(streamText, cuts, (text, at) => {
      // A final LF: a CR that ends the input is a line end to us at once, while the reference
      // waits for the next character (it may be CRLF's LF). The same bytes once the stream goes on.
      const chunks = [...chunksOf(text, at), '\n'];
      const ours = parseAll(chunks);
      const theirs: { type: string; data: string; id: string | undefined }[] = [];
      const retries: number[] = [];
      const reference = createParser({
        onEvent: (m) => theirs.push({ type: m.event ?? 'message', data: m.data, id: m.id }),
        onRetry: (ms) => retries.push(ms),
      });
      for (const c of chunks) reference.feed(c);
      t.deepEqual(
        ours.events.map((e) => ({ type: e.type, data: e.data, id: e.id })),
        theirs,
        JSON.stringify(text),
      );
      t.deepEqual(ours.retries, retries, JSON.stringify(text));
    }),
    { numRuns: 3000 },
  );
});

test('bounded: no more events than blank lines, no more data than input, and the same result for every chunking', (t) => {
  fc.assert(
    fc.property(streamText, cuts, cuts, (text, at1, at2) => {
      const one = parseAll(chunksOf(text, at1));
      const two = parseAll(chunksOf(text, at2));
      t.deepEqual(one, two);
      const lineBreaks = text.match(/\r\n|\r|\n/g)?.length ?? 0;
      t.true(one.events.length <= lineBreaks);
      t.true(one.events.reduce((n, e) => n + e.data.length + e.type.length, 0) <= text.length + 7 * one.events.length);
    }),
    { numRuns: 1000 },
  );
});

test('an empty chunk between the CR and the LF of a CRLF is no line break of its own (found by the reference property)', (t) => {
  const { events } = parseAll(['data: a\r', '', '\ndata: b\r', '', '\n\r', '', '\n']);
  t.deepEqual(
    events.map((e) => e.data),
    ['a\nb'],
  );
});
