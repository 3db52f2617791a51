import { SseInvalidFieldError } from './errors.js';

/** One SSE event, before encoding. */
export interface FrameInit {
  /** Event name (`event:` field). Omitted means the browser's default `message` event. */
  event?: string;
  /** Payload. Strings are sent verbatim (multi-line strings become several `data:` lines); anything else as JSON. */
  data?: unknown;
  /** Event id (`id:` field). Only durable messages carry one, so `Last-Event-ID` names the last of them. */
  id?: string;
  /** Reconnection delay for the browser (`retry:` field), in ms. */
  retry?: number;
}

const FORBIDDEN = /[\r\n\0]/;
const LINE_BREAK = /\r\n|\r|\n/;

/** A heartbeat comment. One shared Buffer: writing it allocates nothing. */
export const HEARTBEAT_FRAME: Buffer = Buffer.from(':\n\n');

/**
 * A lone `retry:` field: sets the browser's reconnection delay and dispatches no event (a
 * block without `data:` is not an event), so even a client that reacts to every event sees nothing.
 */
export function encodeRetry(ms: number): Buffer {
  if (!Number.isInteger(ms) || ms < 0) throw new TypeError('retry must be a non-negative integer');
  return Buffer.from(`retry: ${ms}\n\n`, 'utf8');
}

/**
 * JSON with bigint written as a string: ids beyond 2^53 must not lose precision in the
 * browser (a Java-library defect), and JSON.stringify throws on bigint otherwise.
 */
export function toJson(value: unknown): string {
  // JSON.stringify with a replacer function is about twice as slow; bigint is rare, and
  // without a replacer it throws a TypeError, so the replacer runs only then.
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return JSON.stringify(value, bigintAsString) ?? 'null';
  }
}

function bigintAsString(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** The text an event carries: strings verbatim, `undefined` as empty, anything else as JSON. */
export function serializeData(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data === undefined) return '';
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return toJson(data);
}

/** Throws a TypeError-like {@link SseInvalidFieldError} if `value` would break the framing. */
export function assertFieldValue(field: string, value: string): void {
  if (FORBIDDEN.test(value)) throw new SseInvalidFieldError(field);
}

/**
 * Encodes one event into the single Buffer that every recipient is written.
 * Serializing once per send (not per connection) is what makes a broadcast cheap.
 */
export function encodeFrame(init: FrameInit): Buffer {
  return encode(init, true);
}

/**
 * {@link encodeFrame} with an id this library made (a recovery window id: base-36 digits,
 * dots and hex, never a line break), not scanned again on every send.
 * @internal
 */
export function encodeFrameWithOwnId(init: FrameInit): Buffer {
  return encode(init, false);
}

function encode(init: FrameInit, checkId: boolean): Buffer {
  let out = '';
  if (init.event !== undefined) {
    if (typeof init.event !== 'string' || init.event === '') throw new TypeError('event must be a non-empty string');
    assertFieldValue('event name', init.event);
    out += `event: ${init.event}\n`;
  }
  if (init.id !== undefined) {
    if (checkId) assertFieldValue('id', init.id);
    out += `id: ${init.id}\n`;
  }
  if (init.retry !== undefined) {
    if (!Number.isInteger(init.retry) || init.retry < 0) throw new TypeError('retry must be a non-negative integer');
    out += `retry: ${init.retry}\n`;
  }
  const data = init.data;
  const text = serializeData(data);
  // A single line is by far the common case. JSON never contains a raw line break (it escapes
  // them), so only text given as a string or Buffer needs the scan.
  if ((typeof data !== 'string' && !Buffer.isBuffer(data)) || !LINE_BREAK.test(text)) {
    out += `data: ${text}\n\n`;
  } else {
    for (const line of text.split(LINE_BREAK)) out += `data: ${line}\n`;
    out += '\n';
  }
  return Buffer.from(out, 'utf8');
}
