import { formatWindowId, parseWindowId, type WindowPosition } from '../core/window-id.js';
import type { RecoveryTarget, RecoveryWindow, WindowPart } from '../local/recovery-window.js';
import type { WindowAnswer, WindowRequest } from './messages.js';

/** How the cluster asks every peer that is up; a known peer that is down, or one that fails, is in `failed`. */
export type AskPeers = (request: WindowRequest) => Promise<{ answers: [nodeId: string, answer: WindowAnswer][]; failed: string[] }>;

/**
 * A recovery across the cluster: this node's part at once, then each peer's own sends since
 * the resume point (each node keeps only its own). Each part is written when its node vouches
 * for it, node by node, each in its own order; `covered` only when every node did: a peer
 * down or failing (its part is unknown), a window exceeded anywhere give `recovered: false`,
 * and the page refetches. A resume point of an older epoch (the cluster's history was lost)
 * gets nothing. The overlap with what the page saw live (a
 * few seconds of other senders) is dropped by the client by id.
 */
export async function recoverAcrossPeers(window: RecoveryWindow, from: WindowPosition, who: RecoveryTarget, ask: AskPeers): Promise<WindowPart> {
  const own = window.since(from, who);
  const { answers, failed } = await ask({ type: 'window', from: formatWindowId(from), who });
  // The peers' epochs first: a node that has just started may not have adopted the cluster's yet.
  for (const [, answer] of answers) if (typeof answer?.epoch === 'string') window.adopt(answer.epoch);
  if (!window.knows(from.epoch)) return { covered: false, frames: [] };
  let covered = own.covered && failed.length === 0;
  const frames = own.frames;
  for (const [, answer] of answers) {
    if (answer?.covered !== true || !Array.isArray(answer.frames)) {
      covered = false;
      continue;
    }
    for (const text of answer.frames) if (typeof text === 'string') frames.push(Buffer.from(text, 'utf8'));
  }
  return { covered, frames };
}

/** A peer's answer to {@link WindowRequest}, from this node's window (none: nothing to vouch for). */
export function answerWindow(window: RecoveryWindow | undefined, request: WindowRequest): WindowAnswer {
  const from = parseWindowId(request.from);
  if (window === undefined || from === undefined) return { epoch: window?.epoch ?? null, covered: false, frames: [] };
  const part = window.since(from, request.who);
  return { epoch: window.epoch, covered: part.covered, frames: part.frames.map((f) => f.toString('utf8')) };
}
