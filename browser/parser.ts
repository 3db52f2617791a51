/** One event as read from the stream. */
export interface ParsedEvent {
  /** Event name; `message` when the frame had no `event:` field. */
  type: string;
  data: string;
  /** The `id:` field of this very frame, if it had one (what marks a durable message). */
  id: string | undefined;
  /** The stream's last event id after this frame (persists across frames, as in EventSource). */
  lastEventId: string;
}

/**
 * Text/event-stream parser following the WHATWG rules (line endings CR, LF or CRLF, fields
 * `event`, `data`, `id`, `retry` reported at once through `onRetry`, comments ignored). Unlike `EventSource` it tells
 * whether a frame carried its own `id:`, which durable delivery needs to acknowledge and
 * de-duplicate exactly the durable messages.
 */
export class EventStreamParser {
  #buffer = '';
  #skipLf = false;
  #type = '';
  #data = '';
  #id: string | undefined;
  #lastEventId = '';

  readonly #onEvent: (event: ParsedEvent) => void;
  readonly #onRetry: (ms: number) => void;

  constructor(onEvent: (event: ParsedEvent) => void, onRetry: (ms: number) => void = () => undefined) {
    this.#onEvent = onEvent;
    this.#onRetry = onRetry;
  }

  /** Feeds decoded text; events are emitted as soon as their blank line arrives. */
  feed(text: string): void {
    // Nothing to read; and it must not forget a CR that ended the last chunk (its LF may come next).
    if (text === '') return;
    let start = 0;
    if (this.#skipLf && text.startsWith('\n')) start = 1;
    this.#skipLf = false;
    const buf = this.#buffer + text.slice(start);
    let pos = 0;
    for (;;) {
      const cr = buf.indexOf('\r', pos);
      const lf = buf.indexOf('\n', pos);
      if (cr < 0 && lf < 0) break;
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      this.#line(buf.slice(pos, end));
      pos = end + 1;
      // CRLF is one line break; a CR at the very end may be followed by an LF in the next chunk.
      if (buf[end] === '\r') {
        if (pos === buf.length) this.#skipLf = true;
        else if (buf[pos] === '\n') pos++;
      }
    }
    this.#buffer = buf.slice(pos);
  }

  #line(line: string): void {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#type = value;
    else if (field === 'data') this.#data += value + '\n';
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.#onRetry(Number(value));
  }

  #dispatch(): void {
    const id = this.#id;
    if (id !== undefined) this.#lastEventId = id;
    const type = this.#type || 'message';
    const data = this.#data;
    this.#type = '';
    this.#data = '';
    this.#id = undefined;
    if (data === '') return;
    this.#onEvent({ type, data: data.slice(0, -1), id, lastEventId: this.#lastEventId });
  }
}
