import type { MemberState } from '../core/channels.js';
import type { QueryArgs, QueryName } from '../core/queries.js';
import type { SendTargetKind } from '../core/targets.js';
import type { DurationRecord } from '../local/connection.js';
import type { DisconnectReason } from '../local/local-node.js';
import type { RecoveryTarget } from '../local/recovery-window.js';
import type { AckedBy, AckItem, CopyAck, CopyItem, PendingRequest } from '../qos/qos-cluster.js';
import type { StoreFilter } from '../qos/qos-store.js';

export type { QueryName } from '../core/queries.js';

/** One send, as forwarded to peers: the payload is already serialized. */
export interface SendItem {
  kind: SendTargetKind;
  keys: string[];
  event: string;
  /** Serialized payload (strings verbatim, else JSON). */
  data: string;
  listening: boolean;
  /** Durable message id (its owner is the node whose tag ends it). */
  id?: string;
  /** An ordinary send's id in its sender's recovery window (the `id:` every recipient gets). */
  wid?: string;
}

/**
 * Sends forwarded in one request. `deadline` (the sender's clock, ms since the epoch) is when
 * the sender stops waiting and counts the peer 0: an ordinary item that reaches the peer
 * later is answered `null` (late), and not written unless it carries a recovery-window id
 * (`wid`): without one, what was counted undelivered is never delivered; with one, the window
 * promises it to the page, which would otherwise miss it while it stays connected. Durable
 * items (with an `id`) are written however late. Nodes' clocks must agree (NTP); a request
 * without a deadline is written whenever it arrives.
 */
export interface SendRequest {
  type: 'send';
  items: SendItem[];
  deadline?: number;
}

/** A peer's answer to `send`: per item, the connections written to, or `null` when it came after its deadline (dropped, or written late when it has a `wid`). */
export type SendAnswer = (number | null)[];

/**
 * Which streams of one browser (user + clientId + domain + tenant, as `Connection.clientKey` gives it)
 * a peer holds: asked after a stream opens, so that `clientIdMaxConnections` counts the
 * whole cluster. Answered with {@link SiblingsAnswer}.
 */
export interface SiblingsRequest {
  type: 'siblings';
  clientKey: string;
}

/** A peer's streams of that browser: id and creation time (ms since the epoch). */
export type SiblingsAnswer = { id: string; createdAt: number }[];

/**
 * A server-side join or leave (`hub.joinChannel` / `leaveChannel`) for the connections of a
 * user, token or connection id on the peer; each changed connection gets `sse-channels`.
 * Answered with the count of connections changed.
 */
export interface ChannelsRequest {
  type: 'channels';
  kind: 'connection' | 'user' | 'token';
  keys: string[];
  channels: string[];
  join: boolean;
}

/**
 * A page's own join or leave (`join.do` / `leave.do`, already authorized) for a connection
 * the peer may hold. Answered with {@link ConnectionChannelsAnswer}.
 */
export interface ConnectionChannelsRequest {
  type: 'connection-channels';
  connectionId: string;
  channels: string[];
  join: boolean;
}

/** The connection's channels (or, to `listeners`, its listeners) after the change, null where it is not held, or the cap that refused it. */
export type ConnectionChannelsAnswer = string[] | null | { refusedAt: number };

/**
 * Peers' part of users' memberships in channels, for presence join / leave decisions: the
 * questions of one tick travel to each peer as one request (a deploy's worth of reconnects
 * must not become one request per user and channel).
 */
export interface MemberStateRequest {
  type: 'member-state';
  /**
   * `held`: the asker's own news, which the peers keep (`PeerMembers`) to announce the user's
   * leave should the asker vanish: true when the user just arrived in the channel on the asker,
   * false when their leave from it is being decided there. Absent: a question only.
   */
  items: { channel: string; userId: string; held?: boolean }[];
}

/**
 * A snapshot of the users a peer holds in channels someone wants presence for, asked when it
 * comes up (what it held before is known from then on). Answered with {@link MembersAnswer}.
 */
export interface MembersRequest {
  type: 'members';
}

/**
 * An online-time value (`setDuration*`) for users or tokens offline on the asker: the peer
 * writes it to those of them that connected there meanwhile, else keeps it for their next
 * connect there (the user may come back to any node). `seconds: null`: the value was given on
 * some node, the peer drops what it keeps. Answered with the connections written, per key.
 */
export interface KeepDurationRequest {
  type: 'keep-duration';
  kind: 'user' | 'token';
  keys: string[];
  seconds: number | null;
}

/** Per channel, the ids of the users the peer holds in it. */
export type MembersAnswer = [channel: string, userIds: string[]][];

/**
 * The `qos-pending` pulls of one tick to one peer, as one request (a storm of reconnections
 * pulled one request per stream and peer). Answered by one list of messages per request.
 */
export interface PendingBatchRequest {
  type: 'qos-pending-batch';
  requests: PendingRequest[];
}

/** The answer to {@link MemberStateRequest}: the peer's node id (ties are broken by it) and a {@link MemberState} per item. */
export interface MemberStateAnswer {
  nodeId: string;
  states: MemberState[];
}

/** One peer's state for one (channel, user), as `Cluster.memberStates` gives it. */
export type PeerMemberState = MemberState & { nodeId: string };

/**
 * A stream came back on the asker with the id of the last ordinary event it saw (`from`): the
 * peer's own sends since then that reach `who`, from its recovery window. Answered with
 * {@link WindowAnswer}.
 */
export interface WindowRequest {
  type: 'window';
  from: string;
  who: RecoveryTarget;
}

/**
 * A peer's part of a recovery: its epoch (the asker adopts it when older), whether it can
 * vouch for every send of its since `from` (false: another epoch, the window exceeded, no
 * window), and the frames, oldest first, as text.
 */
export interface WindowAnswer {
  epoch: string | null;
  covered: boolean;
  frames: string[];
  /**
   * What the peer knows of the cluster, so that a node that is down or gone need not make the
   * recovery partial (see `WindowCluster`): its node id, its window's node tag and start, and
   * each peer it saw (`null`: up; else when it went down). Absent from older versions.
   */
  self?: string;
  node?: string;
  start?: number;
  lives?: Record<string, number | null>;
  /** The parts of nodes gone after a graceful close that the peer answers for (see {@link WindowHandoffRequest}). */
  handed?: HandedPart[];
}

/** A handed-off window's part of a recovery: whose, whether it covers the range, its frames. */
export interface HandedPart {
  self: string;
  node: string;
  start: number;
  lives: Record<string, number | null>;
  covered: boolean;
  frames: string[];
  /**
   * A send of that node before the range, that reaches the page, was failed by a peer this
   * holder cannot excuse: the recovery is not covered, whenever that node went (absent: an
   * older version).
   */
  missedLive?: boolean;
}

/**
 * After a forward of ordinary sends to a peer failed (it timed out: the peer may have written
 * them all the same, late), the sender asks it which of them it wrote, by their window ids
 * (`wids`). Answered with those it wrote (a string array); one it does not remember counts as
 * not written.
 */
export interface WindowTookRequest {
  type: 'window-took';
  wids: string[];
}

/**
 * A node closing gracefully hands its window to its peers, after it stopped taking sends
 * (`parts`: its own, and those it held for nodes gone before it): they answer for it once it
 * is gone (see `WindowCluster`). Answered with `true`.
 */
export interface WindowHandoffRequest {
  type: 'window-handoff';
  parts: HandedWindow[];
}

/**
 * One node's window as handed off: who it was (as in {@link WindowAnswer}), the time of the
 * newest send its window had dropped (-1: none; a replay range starting before it is not
 * covered), and its sends, oldest first, each `[ms, kind, keys, event, listening, frame]`, and the
 * sends a peer failed to take.
 */
export interface HandedWindow {
  self: string;
  node: string;
  start: number;
  lives: Record<string, number | null>;
  droppedMs: number;
  entries: [number, SendTargetKind, string[], string, boolean, string][];
  /**
   * Sends peers failed to take (`[ms, kind, keys, event, listening, peers]`): a resume from
   * after one that it reaches is not covered, unless each of those peers went down since.
   */
  missed?: [number, SendTargetKind, string[], string, boolean, string[]][];
}

/**
 * Copies of durable messages to keep (`qos.replication`): from their owner at send time, or
 * from a holder copying an absent owner's messages again. Answered with the count held once
 * committed.
 */
export interface CopyRequest {
  type: 'qos-copy';
  items: CopyItem[];
}

/**
 * Targets of copies removed at their owner (`items`: acks) or whole copies deleted (`ids`:
 * cancelled), told to every node that may hold copies. With `keep`, the owner is away: the
 * acks were made meanwhile, each holder keeps them for it. Answered with the targets removed.
 */
export interface CopyRemoveRequest {
  type: 'qos-copy-remove';
  items: AckItem[];
  ids: string[];
  keep?: { connectionId: string; by: AckedBy };
}

/** To an owner back: the acks of its messages kept while it was away. Answered with `AcksMeanwhile`. */
export interface CopyAcksRequest {
  type: 'qos-copy-acks';
  acks: CopyAck[];
}

/** From an owner (back, or just seeing a peer come up): the acks of its messages the peer kept for it. Answered with `CopyAck[]` (the peer forgets them). */
export interface CopyAcksOfRequest {
  type: 'qos-copy-acks-of';
  tag: string;
}

/** To an owner: which of these ids of its messages it still holds (a holder drops the copies of the others). Answered with the ids held. */
export interface CopyHeldRequest {
  type: 'qos-copy-held';
  ids: string[];
}

/**
 * From a node whose durable sends may have missed the recipient: made while it held the
 * recipient down (stored, not forwarded; the recipient may have pulled from it before they
 * were), or forwarded to it in vain while it stayed up (timed out, refused). The recipient
 * pulls again from the sender for its streams (`qos-pending`); when the sender shares its
 * store (`tag` is its own), it reads that store again instead. Answered with null.
 */
export interface PullMeRequest {
  type: 'qos-pull-me';
  /** The sender's store tag (absent from earlier builds, which never tell a peer sharing their store). */
  tag?: string;
}

/** A query as it crosses the wire: a name of the query map and its arguments. */
export type QueryRequest = { [N in QueryName]: { type: 'query'; name: N; args: QueryArgs<N> } }[QueryName];

/**
 * Every request between nodes: a discriminated union, so the handler's switch is exhaustive
 * and a new kind of message cannot be forgotten.
 */
export type ClusterRequest =
  | { type: 'hello' }
  | SendRequest
  | QueryRequest
  | { type: 'disconnect'; kind: SendTargetKind; keys: string[]; reconnect: boolean; reason: DisconnectReason; record?: DurationRecord }
  | { type: 'duration'; kind: SendTargetKind; keys: string[]; seconds: number }
  | { type: 'clear-duration'; kind: SendTargetKind; keys: string[] }
  | KeepDurationRequest
  | SiblingsRequest
  | { type: 'listeners'; connectionId: string; names: string[]; add: boolean }
  | ChannelsRequest
  | ConnectionChannelsRequest
  | MemberStateRequest
  | MembersRequest
  | ({ type: 'qos-pending' } & PendingRequest)
  | PendingBatchRequest
  | { type: 'qos-ack'; items: AckItem[]; connectionId: string; by: AckedBy }
  /** The first `limit` stored messages of the peer's store that match `filter` (the admin listing). */
  | { type: 'qos-list'; filter: StoreFilter; limit: number }
  | WindowRequest
  | { type: 'window-epoch' }
  | WindowHandoffRequest
  | WindowTookRequest
  | CopyRequest
  | CopyRemoveRequest
  | CopyAcksRequest
  | CopyHeldRequest
  | CopyAcksOfRequest
  | PullMeRequest;

export type { HelloAnswer } from '../core/hello.js';

/** Version 2: request signatures bind the recipient and the body length (nodes of version 1 are not peers). */
export const PROTOCOL_VERSION = 2;
