import type { Context } from 'koa';
import type { ConnectionHandle } from '../core/connection-handle.js';
import type { SseUser } from '../core/user.js';
import { readBeaconForm, readJson, readJsonObject, readMultipart } from './body.js';
import { connectionIdOf, requireOwnConnection, type EndpointEnv } from './endpoint.js';
import type { UploadedFile, UploadFields } from './plugin-options.js';
import type { ApiKey } from './publish-keys.js';

/** Route parameters, percent-decoded (by @koa/router). */
export type Params = Readonly<Record<string, string>>;

/**
 * What a route's handler receives from the router once the caller passed the route's
 * `access` check. The request body can be read only through a call (lint: only this file
 * imports `body.ts`), and the router makes a call only after that check: so no endpoint
 * can read a body before it knows who is asking.
 */
export interface PublicCall {
  readonly ctx: Context;
  readonly env: EndpointEnv;
  /** Route parameters, percent-decoded. */
  readonly params: Params;
}

/** A call to a route whose credential is an unguessable connection id in a small form (`disconnect.do`). */
export interface BeaconCall extends PublicCall {
  /** The beacon's form (multipart, urlencoded, JSON or text), at most `limit` bytes. */
  beaconForm(limit: number): Promise<Record<string, unknown>>;
}

/** A call by an authenticated user (`access: 'user'` or `'admin'`). */
export interface UserCall extends PublicCall {
  /** Who `authenticate` said the caller is. */
  readonly user: SseUser;
  /** The JSON body as an object (`{}` when empty); bounded by `jsonLimit`. */
  json(): Promise<Record<string, unknown>>;
  /** The JSON body, any JSON value (`undefined` when empty); bounded by `jsonLimit`. */
  jsonValue(): Promise<unknown>;
  /** A multipart upload, bounded by `uploadLimit` and `uploadMaxFiles`. */
  multipart(): Promise<{ fields: UploadFields; files: UploadedFile[] }>;
  /**
   * The caller's own live connection named by `id` (else by the query's `connectionId`): 400
   * without an id, 404 if unknown, 403 if it is another user's.
   */
  ownConnection(id?: unknown): Promise<ConnectionHandle>;
}

/** A call to a route that acts on the caller's connection named in the query (`connection: 'query'`): checked before the handler runs. */
export interface ConnectionCall extends UserCall {
  readonly connection: ConnectionHandle;
}

/** A call with an API key of the publish API (`access: 'api-key'`): the key was found, and its scope allows the route. */
export interface ApiKeyCall extends PublicCall {
  /** The caller's key (its id and scope; never the secret). */
  readonly key: ApiKey;
  /** The JSON body as an object (`{}` when empty); bounded by `publish.maxBodyBytes`. */
  json(): Promise<Record<string, unknown>>;
}

/** The one implementation of the call interfaces; which of them a handler sees is decided by its route's `access`. */
export class EndpointCall implements BeaconCall, ConnectionCall, ApiKeyCall {
  readonly ctx: Context;
  readonly env: EndpointEnv;
  readonly params: Params;
  readonly #user: SseUser | undefined;
  readonly #key: ApiKey | undefined;
  #connection: ConnectionHandle | undefined;

  constructor(ctx: Context, env: EndpointEnv, params: Params, user: SseUser | undefined, key?: ApiKey) {
    this.ctx = ctx;
    this.env = env;
    this.params = params;
    this.#user = user;
    this.#key = key;
  }

  get key(): ApiKey {
    if (this.#key === undefined) throw new TypeError('This route does not take an API key: declare its access');
    return this.#key;
  }

  get user(): SseUser {
    return this.#authenticated();
  }

  get connection(): ConnectionHandle {
    if (this.#connection === undefined) throw new TypeError('The route did not declare `connection`: use ownConnection()');
    return this.#connection;
  }

  json(): Promise<Record<string, unknown>> {
    if (this.#key !== undefined) return readJsonObject(this.ctx, this.env.publish.maxBodyBytes);
    this.#authenticated();
    return readJsonObject(this.ctx, this.env.options.jsonLimit);
  }

  jsonValue(): Promise<unknown> {
    this.#authenticated();
    return readJson(this.ctx, this.env.options.jsonLimit);
  }

  multipart(): Promise<{ fields: UploadFields; files: UploadedFile[] }> {
    this.#authenticated();
    const o = this.env.options;
    return readMultipart(this.ctx, { totalBytes: o.uploadLimit, maxFiles: o.uploadMaxFiles });
  }

  beaconForm(limit: number): Promise<Record<string, unknown>> {
    return readBeaconForm(this.ctx, limit);
  }

  async ownConnection(id?: unknown): Promise<ConnectionHandle> {
    const user = this.#authenticated();
    const wanted = connectionIdOf(id ?? this.ctx.query.connectionId);
    if (this.#connection?.id !== wanted) this.#connection = await requireOwnConnection(this.env.hub, user, wanted);
    return this.#connection;
  }

  /** The user; a programming error (TypeError) on a route that does not authenticate. */
  #authenticated(): SseUser {
    if (this.#user === undefined) throw new TypeError('This route does not authenticate its caller: declare its access');
    return this.#user;
  }
}
