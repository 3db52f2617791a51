import type { ExecutionContext } from 'ava';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** A received SSE event (`event` defaults to `message`, as in browsers). */
export interface Received {
  event: string;
  data: string;
  id?: string;
}

/**
 * A raw SSE stream read with fetch and a WHATWG-compliant parser: sees every frame, comment
 * and the status, which the EventSource API hides. Closed when the test ends.
 */
export class RawStream {
  readonly events: Received[] = [];
  comments = 0;
  status = 0;
  headers: Headers | undefined;
  ended = false;
  connectionId = '';
  readonly #abort = new AbortController();
  #waiters: (() => void)[] = [];
  #done: Promise<void> = Promise.resolve();

  static async open(t: ExecutionContext, url: string, init: RequestInit = {}): Promise<RawStream> {
    const stream = new RawStream();
    t.teardown(() => stream.close());
    await stream.#start(url, init);
    return stream;
  }

  async #start(url: string, init: RequestInit): Promise<void> {
    const res = await fetch(url, { ...init, signal: this.#abort.signal });
    this.status = res.status;
    this.headers = res.headers;
    if (!res.ok || !res.body) {
      this.ended = true;
      this.body = await res.text().catch(() => '');
      return;
    }
    const parser = createParser({
      onEvent: (msg: EventSourceMessage) => {
        this.events.push({ event: msg.event ?? 'message', data: msg.data, ...(msg.id !== undefined ? { id: msg.id } : {}) });
        this.#wake();
      },
      onComment: () => {
        this.comments++;
        this.#wake();
      },
    });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    this.#done = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch {
        // aborted or reset: the stream is over either way
      }
      this.ended = true;
      this.#wake();
    })();
    const finish = await this.next('connect-finish');
    this.connectionId = JSON.parse(finish.data).connectionId;
  }

  body = '';

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `predicate` holds (checked on every frame), or fails after `timeoutMs`. */
  async until(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${what}; got ${JSON.stringify(this.events.map((e) => e.event))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The first event named `event` not yet taken by `next`. */
  #taken = new Set<Received>();
  async next(event: string, timeoutMs = 3000): Promise<Received> {
    let found: Received | undefined;
    await this.until(
      () => {
        found = this.events.find((e) => e.event === event && !this.#taken.has(e));
        return found !== undefined;
      },
      `event "${event}"`,
      timeoutMs,
    );
    this.#taken.add(found!);
    return found!;
  }

  /** Events named `event` received so far. */
  named(event: string): Received[] {
    return this.events.filter((e) => e.event === event);
  }

  /** Waits until the server ends the stream. */
  async waitEnd(timeoutMs = 3000): Promise<void> {
    await this.until(() => this.ended, 'end of stream', timeoutMs);
  }

  close(): Promise<void> {
    this.#abort.abort();
    return this.#done;
  }
}

/**
 * What `page` got of `event` is `ids`, each once and in this order: checked once a `marker`
 * event that `sendMarker` sends after them has come (nothing else can still be on its way).
 */
export async function eachOnceInOrder(
  t: ExecutionContext,
  page: RawStream,
  event: string,
  ids: string[],
  sendMarker: () => Promise<unknown>,
): Promise<void> {
  await sendMarker();
  await page.next('marker', 5000);
  t.deepEqual(
    page.named(event).map((e) => e.id),
    ids,
    'each message once, in order',
  );
}
