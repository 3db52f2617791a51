/** The payloads of the protocol's own frames, as the client reads them. */

/** The `connect-finish` payload. */
export interface SseConnectInfo {
  connectionId: string;
  serverTime?: number;
  reconnectTime?: number;
  name?: string;
  enableCluster?: boolean;
  version?: string;
  heartbeatMs?: number;
  expiresAt?: number;
  /** The runtime channels the server re-admitted (servers with runtime channels). */
  channels?: string[];
  /** The stream resumed and got every ordinary event it missed (servers with the recovery window). */
  recovered?: boolean;
  /** The server's recovery window epoch, `null` without a window. */
  epoch?: string | null;
  [key: string]: unknown;
}

/** The `connect-close` payload. */
export interface SseCloseInfo {
  connectionId?: string;
  reason?: string;
  reconnect?: boolean;
  [key: string]: unknown;
}
