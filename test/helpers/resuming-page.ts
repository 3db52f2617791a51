import { createParser } from 'eventsource-parser';

/** One `bell` of the recovery tests' senders (test/fixtures/window-node.ts). */
export interface Bell {
  s: string;
  k: string;
  n: number;
}

/**
 * A page as the browser client behaves towards the recovery window, over fetch: it comes back
 * after every end of its stream (to whichever node `pick` names: a load balancer), with
 * `recover=` the id of the last ordinary event it saw, and shows an event only once by id
 * (4096 ids remembered, as browser/recovery.ts does). Records what it showed, what it dropped,
 * and each `connect-finish`.
 */
export class ResumingPage {
  readonly shown: Bell[] = [];
  /** Replayed events dropped by id (seen live already): never shown. */
  dropped = 0;
  readonly finishes: { recovered: boolean; resumed: boolean; epoch: string | null; node: string }[] = [];
  connected = false;
  #last = '';
  readonly #recent = new Set<string>();
  #abort: AbortController | undefined;
  #closed = false;
  readonly #done: Promise<void>;

  constructor(
    private readonly query: string,
    private readonly pick: () => string,
  ) {
    this.#done = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      const base = this.pick();
      const abort = (this.#abort = new AbortController());
      const recover = this.#last;
      try {
        const res = await fetch(`${base}/connect?${this.query}${recover === '' ? '' : `&recover=${encodeURIComponent(recover)}`}`, {
          signal: abort.signal,
        });
        if (res.ok && res.body !== null) {
          const parser = createParser({
            onEvent: (msg) => {
              if (msg.event === 'connect-finish') {
                const info = JSON.parse(msg.data) as { recovered: boolean; epoch: string | null };
                this.finishes.push({ recovered: info.recovered, resumed: recover !== '', epoch: info.epoch, node: base });
                this.connected = true;
              } else if (msg.event === 'bell' && msg.id !== undefined) {
                if (this.#recent.has(msg.id)) {
                  this.dropped++;
                  return;
                }
                this.#recent.add(msg.id);
                if (this.#recent.size > 4096) this.#recent.delete(this.#recent.values().next().value!);
                this.#last = msg.id;
                this.shown.push(JSON.parse(msg.data) as Bell);
              }
            },
          });
          const decoder = new TextDecoder();
          // A reader loop rather than for-await: the browser tests' DOM typings have no async iterator on a stream.
          const reader = res.body.getReader();
          for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) parser.feed(decoder.decode(chunk.value, { stream: true }));
        }
      } catch {
        // the node went away, or we closed: come back (or stop)
      }
      this.connected = false;
      if (!this.#closed) await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.abort();
    await this.#done;
  }
}

/**
 * What a page should have shown of one sender's stream: `sent` sends of each kind it is
 * targeted by (the senders send user p0, tenant t0, channel ch, all). Answers the counts
 * missed, duplicated and out of order.
 */
export function audit(
  page: ResumingPage,
  senders: ReadonlyMap<string, number>,
  kinds: readonly string[],
): { expected: number; seen: number; missed: number; duplicates: number; outOfOrder: number; missing: string[] } {
  const missing: string[] = [];
  let expected = 0;
  let missed = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let seen = 0;
  for (const [sender, sent] of senders) {
    for (const k of kinds) {
      const ns = page.shown.filter((b) => b.s === sender && b.k === k).map((b) => b.n);
      seen += ns.length;
      expected += sent;
      const unique = new Set(ns);
      duplicates += ns.length - unique.size;
      for (let n = 0; n < sent; n++) {
        if (unique.has(n)) continue;
        missed++;
        missing.push(`${sender}/${k}/${n}`);
      }
      for (let i = 1; i < ns.length; i++) if (ns[i]! < ns[i - 1]!) outOfOrder++;
    }
  }
  return { expected, seen, missed, duplicates, outOfOrder, missing };
}
