import type { Context } from 'koa';
import type { ConnectionHandle } from '../core/connection-handle.js';
import type { SseUser } from '../core/user.js';
import type { HubOptions } from '../hub-options.js';

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

/** Options of {@link ssePlugin}. Every option is optional except `authenticate`. */
export interface SsePluginOptions extends HubOptions {
  /**
   * Identifies the caller of every endpoint. Return the user, or null for 401.
   * Read cookies / headers here; the library never stores them.
   */
  authenticate: (ctx: Context) => SseUser | null | undefined | Promise<SseUser | null | undefined>;
  /** Whether this user may use the admin endpoints. Default: nobody (403). */
  authorizeAdmin?: (ctx: Context, user: SseUser) => boolean | Promise<boolean>;
  /** Handles `POST {base}/connect/message/{path}.do`; the result is sent through `wrapOkResponse`. */
  onMessage?: (path: string, ctx: Context, connection: ConnectionHandle, body: unknown) => unknown;
  /** Handles `POST {base}/connect/upload/{path}.do`; the result is sent through `wrapOkResponse`. */
  onUpload?: (path: string, ctx: Context, connection: ConnectionHandle, fields: UploadFields, files: UploadedFile[]) => unknown;
  /** Envelope of every JSON success answer. Default `{success: true, code: 200, data, message: null, errorMessage: null}`. */
  wrapOkResponse?: (result: unknown) => unknown;
  /** What admin listings show of a user. Default `{id, name, tenantId}`: never tokens or other fields. */
  redactUser?: (user: SseUser) => unknown;
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
}
