import type { Context } from 'koa';
import type { ClientInfo } from '../core/client-info.js';
import type { ConnectionHandle } from '../core/connection-handle.js';
import type { SseUser } from '../core/user.js';
import { HUB_OPTION_SHAPES, type HubOptions } from '../hub-options.js';
import { checkOptionShapes, type ShapesOf } from '../core/option-shape.js';
import type { ConnectionView, StoredMessageView } from '../core/admin-api.js';
import type { ConnectionInfo } from '../core/connection-info.js';
import type { StoredEntry } from './admin-views.js';
import type { Connection } from '../local/connection.js';
import { CHANNEL_RATE_LIMIT_SHAPES, type ChannelRateLimitOptions } from './channel-rate-limit.js';
import { PUBLISH_SHAPES, type PublishOptions } from './publish-keys.js';
import { REQUEST_RATE_LIMIT_SHAPES, type RequestRateLimitOptions } from './request-rate-limit.js';

/** A file received by an upload endpoint, held in memory (bounded by `uploadLimit`). */
export interface UploadedFile {
  /** The form field the file came in. */
  fieldName: string;
  /** The client's file name (untrusted: never use it as a path). */
  filename: string;
  mimeType: string;
  encoding: string;
  /** Size in bytes. */
  size: number;
  data: Buffer;
}

/** Form fields of an upload; a repeated field gives an array. A map without a prototype: `fields.toString` is a field or undefined, never a method. */
export type UploadFields = Record<string, string | string[]>;

/** An endpoint, as {@link SsePluginOptions.authorizeEndpoint} is told of it. */
export interface EndpointName {
  /** The route as the route table declares it, under the base path: e.g. `/connect/users.json`, `/connect/message/*path.do`, `{/}` (the script). */
  route: string;
  /** The request's method. */
  method: string;
  /** Who the route admits before the hook: `public`, `connection-id` (`disconnect.do`), `user`, `admin` or `api-key` (the publish API; the hook's `user` is then null). */
  access: 'public' | 'connection-id' | 'user' | 'admin' | 'api-key';
}

/** Options of {@link ssePlugin}. Every option is optional except `authenticate`. */
export interface SsePluginOptions extends HubOptions {
  /**
   * Identifies the caller of every endpoint. Return the user, or null for 401.
   * Read cookies / headers here; the library never stores them.
   */
  authenticate: (ctx: Context) => SseUser | null | undefined | Promise<SseUser | null | undefined>;
  /**
   * Answers a request whose `authenticate` gave no user, on every endpoint that authenticates
   * (the Java `buildUnauthorizedResponse`): set `ctx.status`, `ctx.body`, headers. If it
   * changes neither status nor body, the default answer follows. A thrown error is answered as
   * any endpoint error: its 4xx status, else 500 reported to `app.emit('error')`.
   * Default: `401 ERR_SSE_UNAUTHORIZED` as JSON.
   */
  onUnauthorized?: (ctx: Context) => void | Promise<void>;
  /**
   * Checks a connect once the caller is authenticated and its parameters parsed, before the
   * stream opens (the Java `buildIfConnectVerifyErrorResponse`): refuse by `client.clientVersion`
   * or any rule. Return `false` to refuse: the answer is what the hook set on `ctx` (status,
   * body, headers), else `403 ERR_SSE_FORBIDDEN`. Any other result accepts. A thrown error is
   * answered with its 4xx status, else 500 and reported to `app.emit('error')`.
   * Default: every authenticated connect is accepted.
   */
  verifyConnect?: (ctx: Context, user: SseUser, client: ClientInfo) => boolean | void | Promise<boolean | void>;
  /**
   * Called once a stream is open (indexed, `connect-finish` written), with its connect
   * parameters: the query string and, for POST, the JSON body (the Java `onConnect(emitter,
   * query)`); includes `access-token` if the client sent one. An error it throws (or a
   * rejection) goes to `app.emit('error')`; the stream stays open. Default: none.
   */
  onConnect?: (connection: Connection, query: Readonly<Record<string, unknown>>) => void | Promise<void>;
  /**
   * Whether this user's connection may join `channel`: asked for every channel of a page's
   * `join.do` (all or nothing: one refusal answers `403 ERR_SSE_CHANNEL_DENIED` and nothing
   * changes), for the fixed `channel` connect parameter (a refusal refuses the stream with
   * `403 ERR_SSE_CHANNEL_DENIED`: it would bring the channel's sends, its durable log after
   * `Last-Event-ID` and its presence) and for the connect parameter `channels` that a
   * reconnecting page sends to restore its channels (a refused one is dropped). Channels the
   * server joined (`hub.joinChannel`) come back through it too: allow them here. Leaving needs
   * no permission. A thrown error answers its 4xx status, else 500.
   * Default: absent, every runtime join is denied and the fixed `channel` is taken as the
   * client sent it (the Java library's behaviour: any logged-in user may name any fixed channel).
   */
  authorizeChannel?: (ctx: Context, user: SseUser, channel: string) => boolean | Promise<boolean>;
  /**
   * Rate limits of `join.do` / `leave.do` per connection and per user: past one, a call changes
   * nothing and is answered `429 ERR_SSE_RATE_LIMITED` with `Retry-After` (the browser client
   * waits that long and sends it again). `false` turns them off. Default: the defaults of
   * {@link ChannelRateLimitOptions} (128 channel names per connection and 512 per user per 10 s).
   */
  channelRateLimit?: ChannelRateLimitOptions | false;
  /**
   * Per-connection rate limits of `message/*.do`, `upload/*.do` and `ack.do` (token buckets):
   * past one a call does nothing and is answered `429 ERR_SSE_RATE_LIMITED` with `Retry-After`
   * (the browser client sends it again then, in order). `false` turns them all off. Default:
   * the defaults of {@link RequestRateLimitOptions} (messages 20/s with bursts of 40, uploads
   * 2/s with bursts of 10, acks 20/s with bursts of 100).
   */
  requestRateLimit?: RequestRateLimitOptions | false;
  /** Whether this user may use the admin endpoints. Default: nobody (403). */
  authorizeAdmin?: (ctx: Context, user: SseUser) => boolean | Promise<boolean>;
  /**
   * Whether this caller may use this endpoint (the Java `hasPermission(user, api)`): asked by
   * the router for every request of every route, after the route's own checks (`authenticate`,
   * `authorizeAdmin` for the admin endpoints, same-site) and before the connection's owner is
   * checked and any body is read; `authorizeChannel` and the rest still run after it, so it can
   * only refuse more. `user` is null on the routes that ask for no login (the script,
   * `disconnect.do`). Anything but `true` answers `403 ERR_SSE_FORBIDDEN`; a thrown error
   * answers its 4xx status, else 500. Default: absent, every endpoint is open to whom its
   * route admits.
   */
  authorizeEndpoint?: (ctx: Context, user: SseUser | null, endpoint: EndpointName) => boolean | Promise<boolean>;
  /** Handles `POST {base}/connect/message/{path}.do`; the result is sent through `wrapOkResponse`. */
  onMessage?: (path: string, ctx: Context, connection: ConnectionHandle, body: unknown) => unknown;
  /** Handles `POST {base}/connect/upload/{path}.do`; the result is sent through `wrapOkResponse`. */
  onUpload?: (path: string, ctx: Context, connection: ConnectionHandle, fields: UploadFields, files: UploadedFile[]) => unknown;
  /** Envelope of every JSON success answer. Default `{success: true, code: 200, data, message: null, errorMessage: null}`. */
  wrapOkResponse?: (result: unknown) => unknown;
  /**
   * What admin listings show of a user (the Java library's `mapToUserVO`). Default
   * `{id, name, tenantId}`: never tokens or other fields.
   */
  redactUser?: (user: SseUser) => unknown;
  // ---- admin views (the Java library's mapTo*VO) --------------------------------------
  /**
   * What `connections.json` shows of a connection (the Java library's `mapToConnectionVO`).
   * `view` is the default: the snapshot with the user as `redactUser` shows it, the page URL
   * without its query, and the Java field names (`createTime`, `messageCount`, ...), so
   * `(c, view) => ({ ...view, team: c.attributes.team })` extends it. The built-in dashboard
   * reads the default fields. Default: `view`.
   */
  mapToConnectionVO?: (connection: ConnectionInfo, view: ConnectionView) => unknown;
  /**
   * What `repositoryMessages.json` shows of a stored durable message (the Java library's
   * `mapToMessageVO`). `entry` holds the message and its targets, token targets with the
   * token itself; `view`, the default, shows hashes instead and adds the Java field names
   * (`eventName`, `body`, `userIdList`, ...). Default: `view`.
   */
  mapToMessageVO?: (entry: StoredEntry, view: StoredMessageView) => unknown;
  // ---- end of admin views -------------------------------------------------------------
  /** Limit of a JSON request body, in bytes. Default 1 MiB. */
  jsonLimit?: number;
  /** Limit of an upload's total size (all files), in bytes. Default 10 MiB. */
  uploadLimit?: number;
  /** Most files in one upload. Default `20`. */
  uploadMaxFiles?: number;
  /**
   * Origins besides this server's own that may call the admin endpoints (e.g.
   * `https://admin.example.com`). Any other cross-site call is refused with
   * `ERR_SSE_CROSS_SITE` (403). Default `[]`.
   */
  adminOrigins?: string[];
  /**
   * Name of the header that carries the server id (the cluster node id, else an id of this
   * process) on every answer of the endpoints, streams included; `false` leaves it out.
   * `X-Sse-Version` (this package's version) is always sent. Default `'X-Sse-Server-Id'`.
   */
  serverIdHeader?: string | false;
  /** Makes this hub `ctx.sse` when several plugins are mounted. Default: the first mounted. */
  primary?: boolean;
  /**
   * The publish API for other processes and languages (`POST {base}/publish`,
   * `{base}/publish/batch`, `GET {base}/publish/online`, `{base}/publish/presence`), with
   * API keys given hashed, scopes, body, batch and rate limits: see {@link PublishOptions}
   * and docs/publish-api.md. Default: off (the endpoints answer 404).
   */
  publish?: PublishOptions;
}

/** What each plugin option may be: the hub's, and the plugin's own. */
const PLUGIN_OPTION_SHAPES: ShapesOf<SsePluginOptions> = {
  ...HUB_OPTION_SHAPES,
  authenticate: 'function',
  onUnauthorized: 'function',
  verifyConnect: 'function',
  onConnect: 'function',
  authorizeChannel: 'function',
  channelRateLimit: { anyOf: [{ oneOf: [false] }, { options: CHANNEL_RATE_LIMIT_SHAPES }] },
  requestRateLimit: { anyOf: [{ oneOf: [false] }, { options: REQUEST_RATE_LIMIT_SHAPES }] },
  authorizeAdmin: 'function',
  authorizeEndpoint: 'function',
  onMessage: 'function',
  onUpload: 'function',
  wrapOkResponse: 'function',
  redactUser: 'function',
  mapToConnectionVO: 'function',
  mapToMessageVO: 'function',
  jsonLimit: 'number',
  uploadLimit: 'number',
  uploadMaxFiles: 'number',
  adminOrigins: { arrayOf: 'string' },
  serverIdHeader: { anyOf: ['string', { oneOf: [false] }] },
  primary: 'boolean',
  publish: { options: PUBLISH_SHAPES },
};

/** Checks the keys and types of every plugin option, nested ones included, before anything starts. */
export function checkPluginOptions(options: unknown): void {
  checkOptionShapes(options, PLUGIN_OPTION_SHAPES, '');
}
