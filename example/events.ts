// The events the example's server sends and its page receives: one map, event name ->
// payload type, shared by both sides (pure types; nothing here runs). The server checks its
// sends against it (`ssePlugin<Events>`); the page can type its listeners with it.

/** A notification posted to a room (`POST /api/notify`). */
export interface Notify {
  channel: string;
  text: string;
  /** Display name of the sender. */
  from: string;
}

/** What the server may send, by event name. */
export interface Events {
  /** The unread count changed. */
  bell: { count: number };
  /** A notification for a room's members. */
  notify: Notify;
  /** A liveness probe without payload. */
  ping: undefined;
}
