import type { Context } from 'koa';
import { SseNotFoundError } from '../core/errors.js';
import { ack } from './ack.js';
import { join, leave, presence } from './channels.js';
import { connections, kick, repositoryMessages, stats, users } from './admin.js';
import { dashboard } from './dashboard.js';
import { disconnect } from './disconnect.js';
import type { EndpointEnv } from './endpoint.js';
import { addListener, removeListener } from './listeners.js';
import { message, upload } from './requests.js';
import { script } from './script.js';
import { connect } from './stream.js';

export type Method = 'GET' | 'HEAD' | 'POST';

/** Route parameters, percent-decoded (by @koa/router). */
export type Params = Readonly<Record<string, string>>;

/** An endpoint at a path under the base path. */
export interface Route {
  /** In @koa/router syntax (path-to-regexp 8). */
  path: string;
  /** The methods it answers; HEAD only where listed. */
  methods: readonly Method[];
  handle: (ctx: Context, env: EndpointEnv, params: Params) => Promise<void>;
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

const NO_LISTENER = Object.freeze({ listener: null });
const NO_COUNT = Object.freeze({ count: 0 });

/** The plugin's endpoints. */
export const ROUTES: readonly Route[] = [
  // `{/}`: the base path itself, with or without its trailing slash.
  { path: '{/}', methods: ['GET', 'HEAD'], handle: script },
  { path: '/sse.js', methods: ['GET', 'HEAD'], handle: script },
  { path: '/connect', methods: ['GET', 'POST'], handle: connect, opensStream: true },
  { path: '/connect/addListener.do', methods: ['POST'], handle: addListener, javaErrorData: NO_LISTENER },
  { path: '/connect/removeListener.do', methods: ['POST'], handle: removeListener, javaErrorData: NO_LISTENER },
  { path: '/connect/join.do', methods: ['POST'], handle: join },
  { path: '/connect/leave.do', methods: ['POST'], handle: leave },
  { path: '/connect/presence.json', methods: ['GET'], handle: presence },
  { path: '/connect/disconnect.do', methods: ['POST'], handle: disconnect, javaErrorData: NO_COUNT },
  { path: '/connect/users.json', methods: ['GET'], handle: users },
  { path: '/connect/connections.json', methods: ['GET'], handle: connections },
  { path: '/connect/ack.do', methods: ['POST'], handle: ack },
  { path: '/connect/repositoryMessages.json', methods: ['GET'], handle: repositoryMessages },
  { path: '/connect/stats.json', methods: ['GET'], handle: stats },
  { path: '/connect/kick.do', methods: ['POST'], handle: kick },
  { path: '/dashboard', methods: ['GET'], handle: dashboard },
  // `*path` spans segments (`a/b/c.do`); the value must pass isAppPath.
  { path: '/connect/message/*path.do', methods: ['POST'], handle: (ctx, env, params) => message(ctx, env, appPathOf(ctx, params.path)) },
  { path: '/connect/upload/*path.do', methods: ['POST'], handle: (ctx, env, params) => upload(ctx, env, appPathOf(ctx, params.path)) },
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

function appPathOf(ctx: Context, value: string | undefined): string {
  if (value === undefined || !isAppPath(value)) throw new SseNotFoundError(ctx.path);
  return value;
}
