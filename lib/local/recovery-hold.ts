import { parseWindowId, type WindowPosition } from '../core/window-id.js';
import type { Connection } from './connection.js';
import { connectFinishTemplate, type ConnectFinishFields, type ConnectFinishFrame } from './connect-finish.js';
import type { RecoveryTarget, WindowPart } from './recovery-window.js';

/**
 * How a stream that comes back with the id of the last ordinary event it saw gets what it
 * missed: from this node's recovery window at once, or, in a cluster, also from the peers
 * (a promise: the stream is held until it settles, so that `connect-finish` can say whether
 * everything came and the missed events come before anything live).
 */
export interface StreamRecovery {
  /** The epoch `connect-finish` names. */
  readonly epoch: string;
  recover(from: WindowPosition, who: RecoveryTarget): WindowPart | Promise<WindowPart>;
}

/** What the hold reads of its node each time it writes `connect-finish` (the hub sets both after the node is made). */
export interface RecoveryHoldSource {
  /** Sent as `connect-finish.enableCluster`. */
  clustered(): boolean;
  /** The recovery window, when on. */
  recovery(): StreamRecovery | undefined;
}

/**
 * The first frames of every stream a node opens: `connect-finish` and, for a stream that
 * resumes from a window id, the events it missed, before anything else. From this node's
 * window they are written at once; when the peers are asked too (a promise), the stream is
 * held (`Connection.hold`: what is sent to it meanwhile waits) until they have answered, so
 * that `recovered` says whether everything came and the missed events come before anything
 * live. A recovery that fails is reported and the stream starts with `recovered: false`.
 */
export class RecoveryHold {
  readonly #fields: Omit<ConnectFinishFields, 'clustered' | 'epoch'>;
  readonly #source: RecoveryHoldSource;
  readonly #report: (err: unknown) => void;
  /** The `connect-finish` template, for the values of `clustered` and the epoch it was built with. */
  #finish: { clustered: boolean; epoch: string | null; frame: ConnectFinishFrame } | undefined;

  /** `fields`: what `connect-finish` tells every stream alike (the node's options, read when the template is built); `report`: a failed recovery. */
  constructor(fields: Omit<ConnectFinishFields, 'clustered' | 'epoch'>, source: RecoveryHoldSource, report: (err: unknown) => void) {
    this.#fields = fields;
    this.#source = source;
    this.#report = report;
  }

  /** Writes the first frames of `conn`, just opened: at once, or once the peers have answered (the stream held meanwhile). */
  start(conn: Connection): void {
    const recovery = this.#source.recovery();
    const from = recovery === undefined ? undefined : parseWindowId(conn.client.recoverFrom);
    if (from === undefined) {
      conn.writeProtocol(this.#finishFrame(conn, false));
      return;
    }
    const who: RecoveryTarget = {
      userId: conn.userId,
      accessToken: conn.accessToken,
      tenantId: conn.tenantId,
      channels: conn.memberships(),
      listeners: [...conn.listeners],
    };
    let part: WindowPart | Promise<WindowPart>;
    try {
      part = recovery!.recover(from, who);
    } catch (err) {
      this.#report(err);
      part = { covered: false, frames: [] };
    }
    if (!(part instanceof Promise)) {
      conn.release(this.#finishFrame(conn, part.covered), part.frames);
      return;
    }
    conn.hold();
    part.then(
      (p) => conn.release(this.#finishFrame(conn, p.covered), p.frames),
      (err: unknown) => {
        this.#report(err);
        conn.release(this.#finishFrame(conn, false), []);
      },
    );
  }

  /** Read when written: the window may adopt an older epoch while the peers answer. */
  #finishFrame(conn: Connection, recovered: boolean): string {
    return this.#connectFinish()(conn.id, Date.now(), conn.expiresAt, conn.channelCount === 0 ? undefined : conn.channels, recovered);
  }

  #connectFinish(): ConnectFinishFrame {
    const clustered = this.#source.clustered();
    const epoch = this.#source.recovery()?.epoch ?? null;
    if (this.#finish?.clustered !== clustered || this.#finish.epoch !== epoch) {
      const { reconnectTimeMs, name, version, heartbeatMs } = this.#fields;
      this.#finish = { clustered, epoch, frame: connectFinishTemplate({ reconnectTimeMs, name, clustered, version, heartbeatMs, epoch }) };
    }
    return this.#finish.frame;
  }
}
