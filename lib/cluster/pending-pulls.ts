import type { DurableAnswers, DurableMessage, PendingRequest } from '../qos/qos-cluster.js';
import type { ClusterRequest } from './messages.js';

/** Most messages in one answer to a pull, alone or batched: an answer must fit the transport's body limit. */
export const PENDING_PAGE = 10_000;
/** Most pulls in one `qos-pending-batch` request. */
const PULL_BATCH_MAX = 256;

/** Sends one request to one peer; rejects when it fails or times out. */
export type PeerRequest = (nodeId: string, request: ClusterRequest, timeoutMs?: number) => Promise<unknown>;

interface PendingPull {
  request: PendingRequest;
  resolve: (messages: DurableMessage[]) => void;
  reject: (err: unknown) => void;
}

/** One peer's pulls: those waiting, and whether a request to it is on its way. */
interface PullLane {
  waiting: PendingPull[];
  busy: boolean;
}

/**
 * The asking side of durable pulls (`qos-pending`). After a restart or a node loss streams
 * reconnect by the hundred per second, each pulling from every owner: one request per stream
 * cost the survivors of a node loss a third of their CPU. So one request at a time goes to
 * each peer: a pull alone leaves at once (in this tick's `setImmediate`, with the others of
 * the tick), and those made while it is on its way leave together when it is answered, as one
 * `qos-pending-batch`. A pull the peer leaves unanswered in a batch is asked alone.
 */
export class PendingPulls {
  readonly #request: PeerRequest;
  readonly #closed: () => boolean;
  readonly #lanes = new Map<string, PullLane>();

  /** @param closed true once nothing should be pulled any more (the owners keep the messages pending). */
  constructor(request: PeerRequest, closed: () => boolean) {
    this.#request = request;
    this.#closed = closed;
  }

  /** What `nodeId` holds for one connection. */
  pull(nodeId: string, request: PendingRequest): Promise<DurableMessage[]> {
    return new Promise((resolve, reject) => {
      let lane = this.#lanes.get(nodeId);
      if (lane === undefined) this.#lanes.set(nodeId, (lane = { waiting: [], busy: false }));
      lane.waiting.push({ request, resolve, reject });
      if (!lane.busy) {
        lane.busy = true;
        const started = lane;
        setImmediate(() => void this.#drain(nodeId, started));
      }
    });
  }

  async #drain(nodeId: string, lane: PullLane): Promise<void> {
    while (lane.waiting.length > 0) {
      const page = lane.waiting.splice(0, PULL_BATCH_MAX);
      if (this.#closed()) for (const p of page) p.resolve([]);
      else await this.#send(nodeId, page);
    }
    lane.busy = false;
    this.#lanes.delete(nodeId);
  }

  async #send(nodeId: string, page: PendingPull[]): Promise<void> {
    const single = async (p: PendingPull): Promise<void> => {
      try {
        p.resolve(listOf(await this.#request(nodeId, { type: 'qos-pending', ...p.request })));
      } catch (err) {
        p.reject(err);
      }
    };
    if (page.length === 1) return single(page[0]!);
    let answer: unknown;
    try {
      answer = await this.#request(nodeId, { type: 'qos-pending-batch', requests: page.map((p) => p.request) });
    } catch (err) {
      for (const p of page) p.reject(err);
      return;
    }
    // Left unanswered (past the answer's budget, or a peer without batches): asked alone.
    await Promise.all(
      page.map((p, i) => {
        const list: unknown = Array.isArray(answer) ? answer[i] : undefined;
        if (!Array.isArray(list)) return single(p);
        p.resolve(list as DurableMessage[]);
        return Promise.resolve();
      }),
    );
  }
}

/**
 * The answering side of a `qos-pending-batch`: one list per pull, all within one answer's
 * budget of {@link PENDING_PAGE} messages. A pull past the budget, or whose read failed
 * (reported to `onError`), is answered `null`: the asker asks it alone.
 */
export async function servePulls(
  node: Pick<DurableAnswers, 'pendingFor'>,
  requests: unknown,
  onError: (err: unknown) => void,
): Promise<(DurableMessage[] | null)[]> {
  const list = Array.isArray(requests) ? (requests.slice(0, PULL_BATCH_MAX) as PendingRequest[]) : [];
  const answers: (DurableMessage[] | null)[] = [];
  let budget = PENDING_PAGE;
  for (const request of list) {
    if (budget <= 0) {
      answers.push(null);
      continue;
    }
    try {
      const messages = await node.pendingFor(request, budget);
      // As many as the budget: there may be more, which a pull of its own reads.
      if (messages.length >= budget) {
        answers.push(null);
        budget = 0;
      } else {
        answers.push(messages);
        budget -= messages.length;
      }
    } catch (err) {
      onError(err);
      answers.push(null);
    }
  }
  return answers;
}

/** A peer's list of messages, or none for anything else. */
function listOf(answer: unknown): DurableMessage[] {
  return Array.isArray(answer) ? (answer as DurableMessage[]) : [];
}
