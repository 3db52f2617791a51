import { formatWindowId, parseWindowId, type WindowPosition } from '../core/window-id.js';
import type { RecoveryTarget, RecoveryWindow, WindowPart } from '../local/recovery-window.js';
import type { ClusterLink } from './cluster-link.js';
import type { WindowAnswer, WindowRequest } from './messages.js';
import type { SharedWindowLog } from './transport.js';

/**
 * The recovery window's side of the cluster, over the cluster's {@link ClusterLink}: answers
 * the peers' `window` and `window-epoch` requests from this node's window, and recovers a
 * stream that came back here from every node's sends. On a LAN each node keeps only its own
 * sends and the peers are asked for theirs; with a shared store (the Redis engine's Stream,
 * `log`) the store is read and no peer is asked.
 */
export class WindowCluster {
  readonly #link: ClusterLink;
  readonly #window: RecoveryWindow;
  readonly #log: SharedWindowLog | undefined;

  constructor(link: ClusterLink, window: RecoveryWindow, log: SharedWindowLog | undefined) {
    this.#link = link;
    this.#window = window;
    this.#log = log;
    if (log !== undefined) window.divert(log.add);
    link.handle('window', (_from, request) => answerWindow(window, request));
    link.handle('window-epoch', () => window.epoch);
  }

  /** Once the cluster runs: the shared store's epoch (Redis), if any. */
  async start(): Promise<void> {
    await this.#log?.start();
  }

  /** A peer came up: the cluster's history is the oldest epoch among the nodes (adopted). Not with a shared store. */
  learnEpoch(nodeId: string): void {
    if (this.#log !== undefined || this.#link.closed) return;
    const window = this.#window;
    this.#link.request(nodeId, { type: 'window-epoch' }).then(
      (epoch) => {
        if (typeof epoch === 'string') window.adopt(epoch);
      },
      (err: unknown) => this.#link.peerError(nodeId, 'window-epoch', err),
    );
  }

  /**
   * What a stream that came back here missed: this node's part at once, then each peer's own
   * sends since the resume point. Each part is written when its node vouches for it, node by
   * node, each in its own order; `covered` only when every node did: a peer down or failing
   * (its part is unknown), a window exceeded anywhere give `recovered: false`, and the page
   * refetches. A resume point of an older epoch (the cluster's history was lost) gets nothing.
   * At once when there is no peer to ask.
   */
  recover(from: WindowPosition, who: RecoveryTarget): WindowPart | Promise<WindowPart> {
    if (this.#log !== undefined) return this.#log.since(from, who);
    const link = this.#link;
    const down = link.reportDown('window', () => true);
    const peers = link.peers();
    if (link.closed || (peers.length === 0 && down.length === 0)) return this.#window.resume(from, who);
    return this.#ask(
      from,
      who,
      peers.map((p) => p.nodeId),
      down.length,
    );
  }

  async #ask(from: WindowPosition, who: RecoveryTarget, peerIds: string[], down: number): Promise<WindowPart> {
    const window = this.#window;
    const own = window.since(from, who);
    const request: WindowRequest = { type: 'window', from: formatWindowId(from), who };
    const answers: WindowAnswer[] = [];
    let failed = down;
    await Promise.all(
      peerIds.map(async (nodeId) => {
        try {
          answers.push((await this.#link.request(nodeId, request)) as WindowAnswer);
        } catch (err) {
          failed++;
          this.#link.peerError(nodeId, 'window', err);
        }
      }),
    );
    // The peers' epochs first: a node that has just started may not have adopted the cluster's yet.
    for (const answer of answers) if (typeof answer?.epoch === 'string') window.adopt(answer.epoch);
    if (!window.knows(from.epoch)) return { covered: false, frames: [] };
    let covered = own.covered && failed === 0;
    const frames = own.frames;
    for (const answer of answers) {
      if (answer?.covered !== true || !Array.isArray(answer.frames)) {
        covered = false;
        continue;
      }
      for (const text of answer.frames) if (typeof text === 'string') frames.push(Buffer.from(text, 'utf8'));
    }
    return { covered, frames };
  }
}

/** A peer's answer to {@link WindowRequest}, from this node's window. */
function answerWindow(window: RecoveryWindow, request: WindowRequest): WindowAnswer {
  const from = parseWindowId(request.from);
  if (from === undefined) return { epoch: window.epoch, covered: false, frames: [] };
  const part = window.since(from, request.who);
  return { epoch: window.epoch, covered: part.covered, frames: part.frames.map((f) => f.toString('utf8')) };
}
