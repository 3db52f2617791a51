import type { ConnectionHandle } from '../core/connection-handle.js';
import type { ConnectionInfo } from '../core/connection-info.js';
import type { SseUser } from '../core/user.js';

/**
 * A connection held by another node of the cluster, as a request handler sees it when the
 * browser's request landed here: the same identity fields, and `send` routed to its node.
 */
export class RemoteConnection implements ConnectionHandle {
  readonly id: string;
  readonly user: SseUser;
  readonly userId: string | undefined;
  readonly accessToken: string | undefined;
  readonly tenantId: string | undefined;
  readonly channel: string | undefined;
  readonly channels: readonly string[];
  readonly listeners: ReadonlySet<string>;
  /** Snapshot taken when the request arrived. */
  readonly info: ConnectionInfo;
  readonly remote = true;
  readonly #send: (event: string, data: unknown) => Promise<boolean>;

  /**
   * @internal `accessToken` is the caller's own token once its hash matched the connection's
   * (a snapshot carries only the hash); `send` routes an event to the node holding it.
   */
  constructor(info: ConnectionInfo, accessToken: string | undefined, send: (event: string, data: unknown) => Promise<boolean>) {
    this.info = info;
    this.id = info.id;
    this.user = info.user;
    this.userId = info.userId;
    this.accessToken = accessToken;
    this.tenantId = info.tenantId;
    this.channel = info.channel;
    this.channels = info.channels ?? [];
    this.listeners = new Set(info.listeners);
    this.#send = send;
  }

  /** Sends one event to this connection, on whichever node holds it. */
  send(event: string, data?: unknown): Promise<boolean> {
    return this.#send(event, data);
  }

  toInfo(): ConnectionInfo {
    return this.info;
  }

  /** Counted by the node that holds the connection, not here. */
  countRequest(): void {}
}
