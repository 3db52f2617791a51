/**
 * The koa-sse-server browser client: `import Sse, { sseEventListener } from '/sse/hr/sse.js'`
 * (served by the plugin) or from `koa-sse-server/browser`.
 */
import Sse from './sse.js';

export default Sse;
export { Sse };
export { sseEventListener } from './listen.js';
export type { SseState, SseConnection, SseConnectInfo, SseCloseInfo } from './sse.js';
export type { SseOptions, SseIntercept } from './options.js';
export type { SseEventListener, SseListenerInput } from './listeners.js';
export type { SseWindowEventDetail } from './event-bus.js';
export { SseClientError, SseRequestError } from './errors.js';
export { VERSION } from './version.js';
