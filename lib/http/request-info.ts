import type { IncomingMessage } from 'node:http';
import type Koa from 'koa';
import type { RequestInfo } from '../local/connection.js';

/**
 * The request facts of a stream (see {@link RequestInfo}). The address and the domain are
 * Koa's `ctx.ip` and `ctx.hostname`, each worked out when first read, by Koa's own getters
 * (`app.request`'s, so `app.proxy`, `X-Forwarded-For` / `X-Forwarded-Host` and an app's
 * override of the getters still count) on a stand-in request that holds only `app` and
 * `req`, not the Koa context (released when the stream opens).
 *
 * - The domain: only the `clientId` cap (a stream that sends `clientId`) and the listings
 *   need it, and Koa's host parsing cost ~2.5 µs per stream. It comes from the request's
 *   headers, which outlive the socket.
 * - The address: without `app.proxy` it is the socket's peer address, a `getpeername` call
 *   that cost 6–9 % of a stream's whole connect CPU (`connect-abba.ts`, BENCHMARKS.md), for a
 *   fact most streams are never asked. Read after the socket closed, that address is gone:
 *   so it is read at once when the app set `ctx.request.ip` or Koa already read it (the
 *   request then holds it), and when the hub has `disconnect` listeners (see `connect`), so
 *   that they still have it.
 */
export class StreamRequestInfo implements RequestInfo {
  readonly userAgent: string;
  #ip: string | undefined;
  #domain: string | undefined;
  #app: Koa | undefined;
  #req: IncomingMessage | undefined;

  constructor(request: Koa.Request, userAgent: string) {
    this.userAgent = userAgent;
    this.#app = request.app;
    this.#req = request.req;
    // Koa keeps an address it read or an app set under a symbol of its own on the request.
    if (Object.getOwnPropertySymbols(request).length > 0) this.#ip = request.ip;
  }

  get ip(): string {
    if (this.#ip === undefined) {
      this.#ip = this.#stand().ip;
      this.#release();
    }
    return this.#ip;
  }

  get domain(): string {
    if (this.#domain === undefined) {
      this.#domain = this.#stand().hostname;
      this.#release();
    }
    return this.#domain;
  }

  /** The three facts as plain data (a getter on a prototype is not an own property). */
  toJSON(): RequestInfo {
    return { ip: this.ip, domain: this.domain, userAgent: this.userAgent };
  }

  #stand(): Koa.Request {
    const stand = Object.create(this.#app!.request) as Koa.Request;
    Object.assign(stand, { app: this.#app, req: this.#req });
    return stand;
  }

  /** Both facts known: the request is no longer needed. */
  #release(): void {
    if (this.#ip !== undefined && this.#domain !== undefined) this.#app = this.#req = undefined;
  }
}
