import type { ConnectionInfo } from '../local/connection.js';
import type { Hub } from '../hub.js';
import type { SseUser } from '../core/user.js';

/**
 * A connection held by another node of the cluster, as a request handler sees it when the
 * browser's request landed here: the same identity fields, and `send` routed to its node.
 */
export class RemoteConnection {
  readonly id: string;
  readonly user: SseUser;
  readonly userId: string | undefined;
  readonly tenantId: string | undefined;
  readonly channel: string | undefined;
  readonly listeners: ReadonlySet<string>;
  /** Snapshot taken when the request arrived. */
  readonly info: ConnectionInfo;
  readonly remote = true;
  readonly #hub: Hub;

  constructor(hub: Hub, info: ConnectionInfo) {
    this.#hub = hub;
    this.info = info;
    this.id = info.id;
    this.user = info.user;
    this.userId = info.userId;
    this.tenantId = info.tenantId;
    this.channel = info.channel;
    this.listeners = new Set(info.listeners);
  }

  /** Sends one event to this connection, on whichever node holds it. */
  async send(event: string, data?: unknown): Promise<boolean> {
    return (await this.#hub.sendByConnectionId(this.id, event, data)) > 0;
  }
}
