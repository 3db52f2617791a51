import type { CopyItem } from '../qos/qos-cluster.js';
import type { PeerRequest } from './pending-pulls.js';

/** Most copies in one `qos-copy` request (an answer must fit the transport's body limit). */
const COPY_BATCH_MAX = 1000;

interface WaitingCopy {
  item: CopyItem;
  resolve: (committed: boolean) => void;
}

/**
 * The copies of one tick to one replica travel as one `qos-copy` request (a burst of durable
 * sends must not cost a request each), committed there in one transaction. Each waiting send
 * learns whether its copy was committed: false when the replica failed or did not answer
 * within the timeout (the copy is counted missing; it may still be committed there).
 */
export class CopyBatches {
  readonly #request: PeerRequest;
  readonly #onError: (nodeId: string, err: unknown) => void;
  readonly #waiting = new Map<string, { copies: WaitingCopy[]; timeoutMs: number | undefined }>();

  constructor(request: PeerRequest, onError: (nodeId: string, err: unknown) => void) {
    this.#request = request;
    this.#onError = onError;
  }

  /** Resolves once `nodeId` committed the copy (true) or failed to (false); never rejects. */
  copy(nodeId: string, item: CopyItem, timeoutMs: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      let lane = this.#waiting.get(nodeId);
      if (lane === undefined) {
        this.#waiting.set(nodeId, (lane = { copies: [], timeoutMs }));
        setImmediate(() => this.#flush(nodeId));
      }
      if (timeoutMs !== undefined && (lane.timeoutMs === undefined || timeoutMs > lane.timeoutMs)) lane.timeoutMs = timeoutMs;
      lane.copies.push({ item, resolve });
    });
  }

  #flush(nodeId: string): void {
    const lane = this.#waiting.get(nodeId);
    this.#waiting.delete(nodeId);
    if (lane === undefined) return;
    for (let i = 0; i < lane.copies.length; i += COPY_BATCH_MAX) {
      const page = lane.copies.slice(i, i + COPY_BATCH_MAX);
      this.#request(nodeId, { type: 'qos-copy', items: page.map((c) => c.item) }, lane.timeoutMs).then(
        (answer) => {
          const ok = answer === page.length;
          for (const c of page) c.resolve(ok);
        },
        (err: unknown) => {
          this.#onError(nodeId, err);
          for (const c of page) c.resolve(false);
        },
      );
    }
  }
}
