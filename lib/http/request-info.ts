import type { IncomingMessage } from 'node:http';
import type Koa from 'koa';
import type { RequestInfo } from '../local/connection.js';

/**
 * The request facts of a stream (see {@link RequestInfo}). The domain is Koa's
 * `ctx.hostname`, worked out when first read: only the `clientId` cap (a stream that sends
 * `clientId`) and the listings need it, and Koa's host parsing cost ~2.5 µs per stream.
 * It is read from the request's headers, which outlive the socket, by Koa's own getter
 * (`app.request`'s, so `app.proxy` / `X-Forwarded-Host` and an app's override still count);
 * the request object it needs is a stand-in holding only `app` and `req`, not the Koa
 * context (released when the stream opens).
 */
export class StreamRequestInfo implements RequestInfo {
  readonly ip: string;
  readonly userAgent: string;
  #domain: string | undefined;
  #app: Koa | undefined;
  #req: IncomingMessage | undefined;

  constructor(ip: string, userAgent: string, app: Koa, req: IncomingMessage) {
    this.ip = ip;
    this.userAgent = userAgent;
    this.#app = app;
    this.#req = req;
  }

  get domain(): string {
    if (this.#domain === undefined) {
      const stand = Object.create(this.#app!.request) as Koa.Request;
      Object.assign(stand, { app: this.#app, req: this.#req });
      this.#domain = stand.hostname;
      this.#app = this.#req = undefined;
    }
    return this.#domain;
  }

  /** The three facts as plain data (a getter on a prototype is not an own property). */
  toJSON(): RequestInfo {
    return { ip: this.ip, domain: this.domain, userAgent: this.userAgent };
  }
}
