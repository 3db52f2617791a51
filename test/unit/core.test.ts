// The stateless core: keys compare as strings, and every error code the library can raise is
// an SseError code listed in the documented tables (errors.ts and docs/operations.md).
import test from 'ava';
import { readFileSync } from 'node:fs';
import * as errors from '../../lib/core/errors.js';
import { keyOf, keysOf } from '../../lib/core/user.js';

test('keys: numbers, bigints and strings become one string form; empty and null are no key; others throw', (t) => {
  t.is(keyOf(7), '7');
  t.is(keyOf(7n), '7');
  t.is(keyOf(''), undefined);
  t.is(keyOf(null), undefined);
  t.throws(() => keyOf(Number.NaN), { instanceOf: TypeError });
  t.throws(() => keyOf({}), { instanceOf: TypeError });
  t.deepEqual(keysOf([7, '7', 8n, ''], 'userIds'), ['7', '8'], 'distinct, in order');
  t.throws(() => keysOf(undefined as unknown as string, 'userIds'), { instanceOf: TypeError, message: 'userIds is required' });
});

test('peer errors are SseErrors with their peer and a stable code', (t) => {
  const timeout = new errors.SsePeerTimeoutError('b', 1000);
  t.true(timeout instanceof errors.SsePeerError && timeout instanceof errors.SseError);
  t.is(timeout.code, 'ERR_SSE_PEER_TIMEOUT');
  t.is(timeout.nodeId, 'b');
  const failed = new errors.SsePeerError('ERR_SSE_PEER_FAILED', 'c', 'Peer c failed the request', { cause: 'its own words' });
  t.is(failed.cause, 'its own words');
  t.false(failed.message.includes('its own words'), "the peer's text stays in cause");
});

test('every ERR_SSE_ code in lib/ is in the table of errors.ts and of docs/operations.md', (t) => {
  const root = new URL('../../', import.meta.url);
  const table = readFileSync(new URL('lib/core/errors.ts', root), 'utf8').split('*/')[0]!;
  const docs = readFileSync(new URL('docs/operations.md', root), 'utf8');
  const sources = [
    'lib/core/errors.ts',
    'lib/cluster/cluster.ts',
    'lib/cluster/http-transport.ts',
    'lib/cluster/redis-transport.ts',
    'lib/http/response.ts',
  ];
  const codes = new Set<string>();
  for (const file of sources) for (const m of readFileSync(new URL(file, root), 'utf8').matchAll(/'(ERR_SSE_[A-Z_]+)'/g)) codes.add(m[1]!);
  // The two codes of a thrown non-SseError, documented in docs/operations.md only.
  const answerOnly = new Set(['ERR_SSE_REQUEST', 'ERR_SSE_INTERNAL']);
  t.true(codes.size > 30, `${codes.size} codes found`);
  t.deepEqual(
    [...codes].filter((c) => !answerOnly.has(c) && !table.includes(`\`${c}\``)),
    [],
    'missing from the table in errors.ts',
  );
  t.deepEqual(
    [...codes].filter((c) => !docs.includes(`\`${c}\``)),
    [],
    'missing from docs/operations.md',
  );
});
