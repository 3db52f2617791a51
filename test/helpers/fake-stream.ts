// An SSE response without HTTP: for unit tests of the local node, durable delivery and the
// cluster. A `FakeResponse` is a node:stream Writable that records what the client would
// receive and parses it as SSE (eventsource-parser, as a browser would); a `FakeRequest`
// carries the socket methods `LocalNode.open` calls. They implement only what `Connection`
// and `LocalNode` use, and are cast to `ServerResponse` / `IncomingMessage` at the one
// boundary, `openStream` (see `asServerResponse`).
//
// The write path (lib/local/write-path.ts) writes straight to the socket only when it finds
// Node's private fields of an HTTP/1.1 ServerResponse; the fake has none of them (and its
// `socket` is null), so `directSocketOf` answers undefined and every write goes through
// `res.write`, which is what is recorded here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { parseClientInfo } from '../../lib/core/client-info.js';
import type { SseUser } from '../../lib/core/user.js';
import type { Connection, RequestInfo } from '../../lib/local/connection.js';
import type { LocalNode } from '../../lib/local/local-node.js';

/** One SSE event as the client parsed it (`event` defaults to `message`, as in browsers). */
export interface ReceivedEvent {
  event: string;
  data: string;
  id?: string;
  /** The `retry:` field that came with this event, if any. */
  retry?: number;
}

const DEFAULT_WAIT_MS = 3000;

/**
 * A response that records every byte the "client" receives. A byte counts as received once
 * the Writable hands it to `_write` and it completes; a slow response ({@link FakeResponse.slow})
 * holds that completion, so what is written piles up in `writableLength` exactly as it does on
 * a socket whose reader does not read.
 */
export class FakeResponse extends Writable {
  statusCode = 0;
  headers: Record<string, string> = {};
  headersSent = false;
  /** No socket: the direct HTTP/1.1 write path is never taken for the fake. */
  readonly socket = null;
  /** Every chunk received, in order. */
  readonly chunks: Buffer[] = [];
  readonly events: ReceivedEvent[] = [];
  /** Comment lines received (heartbeats are `:` comments). */
  comments = 0;
  /** Errors the Writable emitted (e.g. a write after end): recorded, never thrown. */
  readonly errors: Error[] = [];
  readonly #parser: EventSourceParser;
  readonly #decoder = new TextDecoder();
  #retry: number | undefined;
  #slow = false;
  #held: (() => void)[] = [];
  #waiters: (() => void)[] = [];

  constructor() {
    super();
    this.#parser = createParser({
      onEvent: (msg) => {
        const received: ReceivedEvent = { event: msg.event ?? 'message', data: msg.data };
        if (msg.id !== undefined) received.id = msg.id;
        if (this.#retry !== undefined) received.retry = this.#retry;
        this.#retry = undefined;
        this.events.push(received);
      },
      onRetry: (ms) => {
        this.#retry = ms;
      },
      onComment: () => {
        this.comments++;
      },
    });
    this.on('error', (err) => this.errors.push(err));
    for (const event of ['finish', 'close']) this.on(event, () => this.#wake());
  }

  /** What `LocalNode.open` calls before the first byte. */
  writeHead(statusCode: number, headers: Record<string, string>): this {
    if (this.headersSent) throw new Error('writeHead called twice');
    this.statusCode = statusCode;
    this.headers = { ...headers };
    this.headersSent = true;
    return this;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const take = (): void => {
      this.#receive(chunk);
      callback();
    };
    if (this.#slow) this.#held.push(take);
    else take();
  }

  /** From now on the client stops reading: written bytes stay in `writableLength`. */
  slow(): this {
    this.#slow = true;
    return this;
  }

  /** The client reads again: everything held is received (and 'drain' follows as on a socket). */
  resume(): void {
    this.#slow = false;
    for (const take of this.#held.splice(0)) take();
  }

  /** Everything received, as text. */
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  /** Events named `event` received so far. */
  named(event: string): ReceivedEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  /** The data of the events named `event`, JSON-parsed. */
  dataOf<T = unknown>(event: string): T[] {
    return this.named(event).map((e) => JSON.parse(e.data) as T);
  }

  /** Waits until `predicate` holds (checked after every chunk, finish and close), or throws after `timeoutMs`. */
  async until(predicate: () => boolean, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${what}; got events ${JSON.stringify(this.events.map((e) => e.event))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The `index`-th event named `event` (0: the first), waiting for it if needed. */
  async event(event: string, index = 0, timeoutMs = DEFAULT_WAIT_MS): Promise<ReceivedEvent> {
    await this.until(() => this.named(event).length > index, `event "${event}" #${index}`, timeoutMs);
    return this.named(event)[index]!;
  }

  /** Waits until the response is over (ended or destroyed). */
  async ended(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await this.until(() => this.writableFinished || this.destroyed, 'end of the response', timeoutMs);
  }

  #receive(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.#parser.feed(this.#decoder.decode(chunk, { stream: true }));
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** The socket calls `LocalNode.open` makes, recorded. */
export class FakeSocket {
  readonly calls: [method: string, ...args: unknown[]][] = [];
  setNoDelay(noDelay?: boolean): this {
    this.calls.push(['setNoDelay', noDelay]);
    return this;
  }
  setKeepAlive(enable?: boolean): this {
    this.calls.push(['setKeepAlive', enable]);
    return this;
  }
  setTimeout(ms: number): this {
    this.calls.push(['setTimeout', ms]);
    return this;
  }
}

/** The part of an IncomingMessage that `LocalNode.open` reads. */
export class FakeRequest {
  readonly socket = new FakeSocket();
  readonly headers: Record<string, string> = {};
}

/**
 * The boundary cast: `Connection` and `LocalNode` use only the members implemented above
 * (writeHead, write, end, destroy, writableLength/Ended/Finished, destroyed, socket, and the
 * 'close' / 'drain' / 'finish' events), so the fake stands in for a ServerResponse.
 */
export function asServerResponse(res: FakeResponse): ServerResponse {
  return res as unknown as ServerResponse;
}

export interface OpenOptions {
  user?: SseUser;
  /** Connect parameters as the query string would carry them (clientId, listeners, channel, ack, lastEventId, …). */
  params?: Record<string, unknown>;
  request?: Partial<RequestInfo>;
  /** Use this response (e.g. one already made slow). */
  res?: FakeResponse;
}

export interface OpenedStream {
  conn: Connection;
  res: FakeResponse;
  req: FakeRequest;
}

/** Opens a stream on `node` over a fake request and response. Throws what `node.open` throws. */
export function openStream(node: LocalNode, options: OpenOptions = {}): OpenedStream {
  const res = options.res ?? new FakeResponse();
  const req = new FakeRequest();
  const conn = node.open({
    // The request: `LocalNode.open` only touches `req.socket`.
    req: req as unknown as IncomingMessage,
    res: asServerResponse(res),
    user: options.user ?? {},
    client: parseClientInfo(options.params ?? {}),
    request: { ip: '127.0.0.1', domain: 'example.test', userAgent: 'unit', ...options.request },
  });
  return { conn, res, req };
}
