import type { HttpAnswer } from './http.js';
import type { TabMessage, TabState } from './tab-bus.js';

/** What a group needs of the client in its tab. */
export interface TabGroupHost {
  /** This tab became the leader: drop the relayed stream and open a real one. */
  elected(): void;
  /** Tabs attached or left: the leader may open or close the stream (it stays while any tab needs it). */
  attachedChanged(): void;
  /** The leader's connection, while its stream is open. */
  connectionId(): string | undefined;
  /** The last durable event id this tab saw. */
  lastEventId(): string;
  /** This tab's own listener names and channels. */
  state(): TabState;
  /** Leader: POSTs `{connectionId, ...body}` as JSON over the connection, now. */
  post(path: string, body: Record<string, unknown>): Promise<HttpAnswer>;
  /** Leader: acknowledges durable messages to the server. */
  ack(ids: string[]): void;
  /** The connection's channels (the union of the tabs') changed. */
  serverChannels(channels: string[]): void;
}

/** What a tab's role (leader-tab.ts, follower-tab.ts) gets from its group. */
export interface TabLink {
  /** This tab's id in the group. */
  readonly id: string;
  readonly host: TabGroupHost;
  /** Posts on the group's bus (nothing once the tab left). */
  post(message: TabMessage): void;
}
