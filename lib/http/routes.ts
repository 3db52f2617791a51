import { ack } from './ack.js';
import { join, leave, presence } from './channels.js';
import { connections, kick, repositoryMessages, stats, users } from './admin.js';
import type { ApiKeyCall, BeaconCall, ConnectionCall, Params, PublicCall, UserCall } from './call.js';
import { dashboard } from './dashboard.js';
import { disconnect } from './disconnect.js';
import type { EndpointEnv } from './endpoint.js';
import { addListener, removeListener } from './listeners.js';
import { openApi } from './openapi.js';
import { online, presence as publishPresence, publishBatch, publishOne } from './publish.js';
import { message, upload } from './requests.js';
import { script, tabsScript } from './script.js';
import { connect } from './stream.js';

export type { Params } from './call.js';

export type Method = 'GET' | 'HEAD' | 'POST';

/**
 * Who may call a route. The router checks it before the handler runs, and a handler can read
 * the request body only through the call the router gives it after that check
 * (lib/http/call.ts): so a stranger's body is never read, whatever a handler does.
 *
 * - `public`: anyone (the browser client's script); the handler gets no body reader.
 * - `connection-id`: the unguessable connection id in a small form is the credential
 *   (`disconnect.do`: a beacon sent while a page unloads may carry no cookie); the form is
 *   read bounded, without authentication.
 * - `user`: `authenticate` must give a user, else 401 (or the app's `onUnauthorized`).
 * - `admin`: a same-site caller (403 `ERR_SSE_CROSS_SITE`), then a user (401), then
 *   `authorizeAdmin` (403).
 * - `api-key`: a key of the publish API as `Authorization: Bearer <key>` (401), whose scope
 *   covers the route's `need` and this system (403), not over its rate (429). No cookie or
 *   `authenticate` is involved. The route exists only while keys are configured.
 */
export type Access = 'public' | 'connection-id' | 'user' | 'admin' | 'api-key';

interface RouteBase {
  /** In @koa/router syntax (path-to-regexp 8). */
  path: string;
  /** The methods it answers; HEAD only where listed. */
  methods: readonly Method[];
  /**
   * Whether the endpoint exists with these options (e.g. `message/*.do` only with
   * `onMessage`): if not, 404 before anything else. Default: it does.
   */
  available?: (env: EndpointEnv) => boolean;
  /**
   * What the Java library's answer to a failed call had in its data (it answered 200), added
   * to the `data` of our error answer so that its pages find those fields.
   */
  javaErrorData?: Readonly<Record<string, unknown>>;
  /**
   * Opens a stream: its head carries the server headers itself (`OpenStreamInit.headers`);
   * the router sets them only on its other answers (errors, a hook's own answer).
   */
  opensStream?: true;
}

/**
 * An endpoint at a path under the base path: who may call it, and its handler, which gets
 * the call the router admitted (typed by `access`: only authenticated calls can read a JSON
 * or multipart body).
 *
 * `connection` says that it acts on one of the caller's own connections, named by
 * `connectionId`: another user's (or another tenant's) is 403.
 * - `'query'`: the id is in the query string; the router checks the owner before the handler
 *   runs and hands the connection over (`call.connection`).
 * - `'query-or-body'`: the id may be in the JSON body, where the browser client and the Java
 *   pages send it; the router checks the owner before the body when the query names the
 *   connection, else the handler gets it through `call.ownConnection(body.connectionId)`,
 *   which checks it against the already authenticated user.
 */
export type Route = RouteBase &
  (
    | { access: 'public'; connection?: undefined; handle: (call: PublicCall) => Promise<void> }
    | { access: 'connection-id'; connection?: undefined; handle: (call: BeaconCall) => Promise<void> }
    | { access: 'user'; connection?: 'query-or-body'; handle: (call: UserCall) => Promise<void> }
    | { access: 'admin'; connection?: undefined; handle: (call: UserCall) => Promise<void> }
    | { access: 'user'; connection: 'query'; handle: (call: ConnectionCall) => Promise<void> }
    | { access: 'api-key'; need: 'read' | 'write'; connection?: undefined; handle: (call: ApiKeyCall) => Promise<void> }
  );

/** The publish API exists while it has keys. */
const publishEnabled = ({ publish }: EndpointEnv): boolean => publish.enabled;

const NO_LISTENER = Object.freeze({ listener: null });
const NO_COUNT = Object.freeze({ count: 0 });

/** The plugin's endpoints. Every route declares its `access`; test/security-matrix.test.ts checks each against it. */
export const ROUTES: readonly Route[] = [
  // `{/}`: the base path itself, with or without its trailing slash.
  { path: '{/}', methods: ['GET', 'HEAD'], access: 'public', handle: script },
  { path: '/sse.js', methods: ['GET', 'HEAD'], access: 'public', handle: script },
  { path: '/sse-tabs.js', methods: ['GET', 'HEAD'], access: 'public', handle: tabsScript },
  { path: '/connect', methods: ['GET', 'POST'], access: 'user', handle: connect, opensStream: true },
  {
    path: '/connect/addListener.do',
    methods: ['POST'],
    access: 'user',
    connection: 'query-or-body',
    handle: addListener,
    javaErrorData: NO_LISTENER,
  },
  {
    path: '/connect/removeListener.do',
    methods: ['POST'],
    access: 'user',
    connection: 'query-or-body',
    handle: removeListener,
    javaErrorData: NO_LISTENER,
  },
  { path: '/connect/join.do', methods: ['POST'], access: 'user', connection: 'query-or-body', handle: join },
  { path: '/connect/leave.do', methods: ['POST'], access: 'user', connection: 'query-or-body', handle: leave },
  { path: '/connect/presence.json', methods: ['GET'], access: 'user', connection: 'query', handle: presence },
  { path: '/connect/disconnect.do', methods: ['POST'], access: 'connection-id', handle: disconnect, javaErrorData: NO_COUNT },
  { path: '/connect/users.json', methods: ['GET'], access: 'admin', handle: users },
  { path: '/connect/connections.json', methods: ['GET'], access: 'admin', handle: connections },
  {
    path: '/connect/ack.do',
    methods: ['POST'],
    access: 'user',
    connection: 'query-or-body',
    handle: ack,
    // Durable delivery runs with a store, or in a cluster for the messages peers own.
    available: ({ hub }) => hub.hasQos || hub.cluster !== undefined,
  },
  { path: '/connect/repositoryMessages.json', methods: ['GET'], access: 'admin', handle: repositoryMessages },
  { path: '/connect/stats.json', methods: ['GET'], access: 'admin', handle: stats },
  { path: '/connect/kick.do', methods: ['POST'], access: 'admin', handle: kick },
  { path: '/dashboard', methods: ['GET'], access: 'admin', handle: dashboard },
  // `*path` spans segments (`a/b/c.do`); the value must pass isAppPath.
  {
    path: '/connect/message/*path.do',
    methods: ['POST'],
    access: 'user',
    connection: 'query',
    handle: message,
    available: ({ options }) => options.onMessage !== undefined,
  },
  {
    path: '/connect/upload/*path.do',
    methods: ['POST'],
    access: 'user',
    connection: 'query',
    handle: upload,
    available: ({ options }) => options.onUpload !== undefined,
  },
  // The publish API (lib/http/publish.ts) and its description.
  { path: '/publish', methods: ['POST'], access: 'api-key', need: 'write', handle: publishOne, available: publishEnabled },
  { path: '/publish/batch', methods: ['POST'], access: 'api-key', need: 'write', handle: publishBatch, available: publishEnabled },
  { path: '/publish/online', methods: ['GET'], access: 'api-key', need: 'read', handle: online, available: publishEnabled },
  { path: '/publish/presence', methods: ['GET'], access: 'api-key', need: 'read', handle: publishPresence, available: publishEnabled },
  { path: '/openapi.json', methods: ['GET', 'HEAD'], access: 'public', handle: openApi },
];

/** The app's own path in `message/{path}.do` and `upload/{path}.do`. */
const APP_PATH = /^[\w\-./]{1,200}$/;

/** Checked on the decoded value: `%2e%2e` arrives as `..` and is refused. */
function isAppPath(value: string): boolean {
  return APP_PATH.test(value) && !value.includes('..');
}

/** Whether a route's parameters are acceptable: where they are not, there is no endpoint (404). */
export function validParams(params: Params): boolean {
  return params.path === undefined || isAppPath(params.path);
}
