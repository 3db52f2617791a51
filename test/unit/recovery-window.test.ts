// The recovery window alone: the ids it gives and the bytes it replays, as a page that comes
// back relies on them (exactly the frames it missed, byte for byte, in order), through the
// window's storage (ids built per millisecond, frames copied into shared chunks, one key
// kept as itself) and its trimming.
import test from 'ava';
import { encodeFrame } from '../../lib/core/frame.js';
import { formatWindowId, parseWindowId } from '../../lib/core/window-id.js';
import { RecoveryWindow, type RecoveryTarget } from '../../lib/local/recovery-window.js';

const who = (userId: string): RecoveryTarget => ({ userId, channels: [], listeners: [] });
const settings = { windowMs: 120_000, maxBytes: 32 * 1024 * 1024, slackMs: 0 };

test('ids: the text formatWindowId gives for (epoch, ms, seq, node), over many sends in one millisecond, a new millisecond and an adopted epoch', (t) => {
  const w = new RecoveryWindow(settings, 1_000_000);
  const check = (now: number, epoch: string): string => {
    const at = w.nextId(now);
    t.is(at.id, formatWindowId({ epoch, ms: at.ms, seq: at.seq, node: w.node }));
    t.deepEqual(parseWindowId(at.id), { epoch, ms: at.ms, seq: at.seq, node: w.node });
    return at.id;
  };
  const first = w.epoch;
  const ids: string[] = [];
  for (let i = 0; i < 80; i++) ids.push(check(2_000_000, first)); // seq 0..79: one and two base-36 digits
  ids.push(check(2_000_001, first));
  ids.push(check(1_999_000, first)); // a clock that steps back: same ms, next seq
  t.true(w.adopt('0000000000'));
  ids.push(check(1_999_000, '0000000000'));
  ids.push(check(2_000_002, '0000000000'));
  t.is(new Set(ids).size, ids.length);
  t.deepEqual(
    ids.slice(0, 82).map((id) => parseWindowId(id)!.seq),
    [...Array.from({ length: 80 }, (_, i) => i), 0, 1],
  );
});

test('replay: the frames a user missed, byte for byte and in order, across chunks, a large frame and sends to several users', (t) => {
  const w = new RecoveryWindow(settings, 1_000);
  const sent: { frame: Buffer; users: string[] }[] = [];
  const send = (now: number, users: string[], data: string): void => {
    const at = w.nextId(now);
    const frame = encodeFrame({ event: 'e', data, id: at.id });
    w.record(at, 'user', users, 'e', false, frame);
    sent.push({ frame: Buffer.from(frame), users });
  };
  const start = w.nextId(1_000);
  for (let i = 0; i < 1500; i++) {
    // About 150 bytes each: several 64 KiB chunks; every 100th a 40 KB frame (kept as its own Buffer).
    const data = i % 100 === 50 ? 'x'.repeat(40_000) : `${i}:${'y'.repeat(100)}`;
    send(1_000 + i, i % 3 === 0 ? ['a', 'b'] : [i % 3 === 1 ? 'a' : 'b'], data);
  }
  t.is(w.size, 1500);
  for (const user of ['a', 'b']) {
    const part = w.since(parseWindowId(start.id)!, who(user), 3_000);
    t.true(part.covered);
    const expected = sent.filter((s) => s.users.includes(user)).map((s) => s.frame);
    t.is(part.frames.length, expected.length);
    t.true(part.frames.every((f, i) => f.equals(expected[i]!)));
  }
  t.deepEqual(w.since(parseWindowId(start.id)!, who('c'), 3_000).frames, []);
});

test('trimming: past the byte cap the oldest go (a resume before them is not covered), the rest replay exactly after the storage shifts', (t) => {
  const w = new RecoveryWindow({ ...settings, maxBytes: 400_000 }, 1_000);
  const frames: Buffer[] = [];
  const ids: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const at = w.nextId(1_000 + i);
    const frame = encodeFrame({ event: 'e', data: `${i}:${'z'.repeat(60)}`, id: at.id });
    w.record(at, 'user', ['u'], 'e', false, frame);
    frames.push(Buffer.from(frame));
    ids.push(at.id);
  }
  t.true(w.bytes <= 400_000);
  const held = w.size;
  t.true(held > 1000 && held < 5000);
  t.false(w.since(parseWindowId(ids[0]!)!, who('u'), 7_000).covered);
  const from = 5000 - held; // the first held; resuming from it gives every later one
  const part = w.since(parseWindowId(ids[from]!)!, who('u'), 7_000);
  t.true(part.covered);
  t.is(part.frames.length, held - 1);
  t.true(part.frames.every((f, i) => f.equals(frames[from + 1 + i]!)));
});

test('an epoch with a line break (from a peer or Redis) cannot reach a frame: the id is refused, as encodeFrame refuses it', (t) => {
  const w = new RecoveryWindow(settings, 1_000);
  w.useEpoch('0000000a\nevent: x');
  t.throws(() => w.nextId(2_000), { code: 'ERR_SSE_INVALID_FIELD' });
});

test('a send a peer failed to take: a resume from after it is not covered until every such peer said it wrote it after all', (t) => {
  const w = new RecoveryWindow({ ...settings, slackMs: 1000 }, 1_000);
  const x = w.nextId(10_000);
  w.record(x, 'user', ['a'], 'e', false, encodeFrame({ event: 'e', data: 'x', id: x.id }));
  w.markMissed(x.ms, x.seq, ['p', 'q']);
  const y = w.nextId(20_000);
  w.record(y, 'user', ['a'], 'e', false, encodeFrame({ event: 'e', data: 'y', id: y.id }));
  const from = parseWindowId(y.id)!;
  t.false(w.since(from, who('a'), 21_000).covered);
  t.true(w.since(from, who('b'), 21_000).covered, 'x does not reach b');
  w.unmarkMissed(x.ms, x.seq + 1, 'p');
  w.unmarkMissed(x.ms, x.seq, 'p');
  t.false(w.since(from, who('a'), 21_000).covered, 'q has not said so');
  w.unmarkMissed(x.ms, x.seq, 'q');
  t.true(w.since(from, who('a'), 21_000).covered);
});
