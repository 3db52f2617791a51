// Shared by the orchestrator, the servers and the load clients: the clock, the payload and a
// small log-scale latency histogram that merges across processes.

/**
 * Microseconds on the monotonic clock. `process.hrtime` reads CLOCK_MONOTONIC, which is one
 * clock for every process of the machine: a sender's timestamp is comparable to the
 * receiver's without any clock-offset guessing.
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

const PAD = 'x'.repeat(40);

/** The ~100-byte JSON event every server sends. `t` (the send time) comes first: clients find it by `"t":`. */
export function payload(seq: number): { t: number; seq: number; type: string; body: string } {
  return { t: nowUs(), seq, type: 'bench-event', body: PAD };
}

/** Histogram bucket width: 2% (e^(1/50)). 1 µs .. ~100 s in 1000 buckets. */
const SCALE = 50;
export const BUCKETS = 1000;

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  total = 0;

  record(us: number): void {
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) * SCALE));
    this.counts[i]!++;
    this.total++;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  /** Sparse form for IPC: [bucket, count] pairs. */
  toSparse(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) out.push([i, this.counts[i]!]);
    return out;
  }

  addSparse(pairs: Array<[number, number]>): void {
    for (const [i, n] of pairs) {
      this.counts[i]! += n;
      this.total += n;
    }
  }

  /** The p-th percentile in µs (bucket midpoint), or NaN when empty. */
  percentile(p: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.exp((i + 0.5) / SCALE);
    }
    return Math.exp(BUCKETS / SCALE);
  }
}

export function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
