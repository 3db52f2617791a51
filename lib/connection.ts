import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { ClientInfo } from './client-info.js';
import { encodeFrame } from './frame.js';
import type { Hub } from './hub.js';
import type { SseUser } from './user.js';

/** Why a stream ended. Sent as `connect-close.reason` when the server closes on purpose. */
export type CloseReason = 'kick' | 'evicted' | 'expired' | 'shutdown' | 'slow' | 'client' | 'error';

/** Request facts recorded when a stream opens. Never cookies or Authorization. */
export interface RequestInfo {
  ip: string;
  domain: string;
  userAgent: string;
}

/** A serializable snapshot of a connection, as queries and admin listings return it. */
export interface ConnectionInfo {
  id: string;
  userId?: string;
  tenantId?: string;
  channel?: string;
  user: SseUser;
  /** First 12 hex digits of SHA-256 of the access token: lets you correlate, never reveals it. */
  accessTokenHash?: string;
  listeners: string[];
  clientId?: string;
  clientVersion?: string;
  screen?: string;
  locationHref?: string;
  accessTime?: number;
  ip: string;
  domain: string;
  userAgent: string;
  createdAt: number;
  expiresAt: number;
  sessionDuration?: number;
  eventsWritten: number;
  requests: number;
  uploads: number;
  lastRequestAt?: number;
  /** Bytes queued in user space, not yet taken by the kernel. */
  bufferedAmount: number;
  attributes: Record<string, unknown>;
}

/**
 * One open SSE response. Created by the hub, never directly. Holds what the client said about
 * itself and counters; the write path ({@link Connection.write}) is the hot path of every send.
 */
export class Connection {
  /** Unguessable id (144 random bits), the client's handle for requests and disconnect. */
  readonly id: string;
  readonly user: SseUser;
  readonly userId: string | undefined;
  readonly accessToken: string | undefined;
  readonly tenantId: string | undefined;
  readonly channel: string | undefined;
  readonly client: ClientInfo;
  readonly request: RequestInfo;
  readonly createdAt: number;
  /** When the server will close the stream with `reason: 'expired'` (ms since epoch). */
  readonly expiresAt: number;
  /** Application attributes: connect parameters the library does not know, plus your own. */
  readonly attributes = new Map<string, unknown>();
  /** Events currently listened to (the `listening` send option matches against it). */
  readonly listeners: Set<string>;
  eventsWritten = 0;
  requests = 0;
  uploads = 0;
  lastRequestAt: number | undefined;
  /** Online seconds, as last told by the client or by `setDuration*`. */
  sessionDuration: number | undefined;
  #closed = false;
  #closeReason: CloseReason | undefined;
  readonly #res: ServerResponse;
  readonly #hub: Hub;
  readonly #limit: number;

  /** @internal */
  constructor(init: {
    id: string;
    hub: Hub;
    res: ServerResponse;
    user: SseUser;
    userId: string | undefined;
    accessToken: string | undefined;
    tenantId: string | undefined;
    client: ClientInfo;
    request: RequestInfo;
    expiresAt: number;
    writeBufferLimit: number;
  }) {
    this.id = init.id;
    this.#hub = init.hub;
    this.#res = init.res;
    this.user = init.user;
    this.userId = init.userId;
    this.accessToken = init.accessToken;
    this.tenantId = init.tenantId;
    this.channel = init.client.channel;
    this.client = init.client;
    this.request = init.request;
    this.listeners = new Set(init.client.listeners);
    this.sessionDuration = init.client.sessionDuration;
    this.createdAt = Date.now();
    this.expiresAt = init.expiresAt;
    this.#limit = init.writeBufferLimit;
    for (const [k, v] of Object.entries(init.client.attributes)) this.attributes.set(k, v);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get closeReason(): CloseReason | undefined {
    return this.#closeReason;
  }

  /** Bytes written but not yet taken by the kernel. Grows when the client reads slowly. */
  get bufferedAmount(): number {
    return this.#res.writableLength;
  }

  /**
   * Writes an encoded frame (or `events` frames joined in one Buffer). Returns false if the connection is closed or was just closed
   * for exceeding its write-buffer limit (a slow reader never grows memory without bound).
   */
  write(frame: Buffer, events = 1): boolean {
    if (this.#closed) return false;
    this.#res.write(frame);
    this.eventsWritten += events;
    if (this.#res.writableLength > this.#limit) {
      this.close('slow');
      return false;
    }
    return true;
  }

  /** Resolves once everything written has been taken by the kernel, or the connection closed. */
  whenDrained(): Promise<void> {
    const res = this.#res;
    if (this.#closed || res.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }

  /** Sends one event to this connection only. Resolves to true if it was written. */
  async send(event: string, data?: unknown): Promise<boolean> {
    return this.write(encodeFrame({ event, data }));
  }

  /**
   * Ends the stream. Unless the client left or is too slow to read it, the client is told
   * why in a `connect-close` frame and whether it should come back by itself.
   */
  close(reason: CloseReason = 'kick', reconnect = reason !== 'kick' && reason !== 'evicted'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    const res = this.#res;
    if (reason === 'slow' || reason === 'error') {
      res.destroy();
    } else if (reason === 'client') {
      res.end();
    } else {
      res.end(encodeFrame({ event: 'connect-close', data: { connectionId: this.id, reason, reconnect } }));
    }
    this.#hub._remove(this, reason);
  }

  /** @internal Called when the socket closed under us (client left, network error). */
  _lost(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = 'client';
    this.#hub._remove(this, 'client');
  }

  toInfo(): ConnectionInfo {
    const info: ConnectionInfo = {
      id: this.id,
      user: this.user,
      listeners: [...this.listeners],
      ip: this.request.ip,
      domain: this.request.domain,
      userAgent: this.request.userAgent,
      createdAt: this.createdAt,
      expiresAt: this.expiresAt,
      eventsWritten: this.eventsWritten,
      requests: this.requests,
      uploads: this.uploads,
      bufferedAmount: this.closed ? 0 : this.bufferedAmount,
      attributes: Object.fromEntries(this.attributes),
    };
    const optional = {
      userId: this.userId,
      tenantId: this.tenantId,
      channel: this.channel,
      accessTokenHash: this.accessToken === undefined ? undefined : hashToken(this.accessToken),
      clientId: this.client.clientId,
      clientVersion: this.client.clientVersion,
      screen: this.client.screen,
      locationHref: this.client.locationHref,
      accessTime: this.client.accessTime,
      sessionDuration: this.sessionDuration,
      lastRequestAt: this.lastRequestAt,
    };
    for (const [k, v] of Object.entries(optional)) if (v !== undefined) (info as unknown as Record<string, unknown>)[k] = v;
    return info;
  }
}

/** First 12 hex digits of SHA-256: correlates tokens in admin views without revealing them. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}
