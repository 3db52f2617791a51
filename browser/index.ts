/**
 * The koa-sse-server browser client: `import Sse from '/sse/hr/sse.js'` (served by the
 * plugin; the default export is the Java client's `Sse` class) or from
 * `koa-sse-server/browser`.
 */
import Sse from './sse.js';

export default Sse;
export { Sse };
export { sseEventListener } from './listen.js';
export type { SseConnection, SseListenerChange } from './sse.js';
export type { SseConnectInfo, SseCloseInfo } from './payloads.js';
export type { SseRecoveryInfo } from './recovery.js';
export type { SseStateName, SseReadyState, SseState } from './states.js';
export type { SseCloseTrigger } from './close-trigger.js';
export type { SseDuration } from './session-clock.js';
export type { SseActiveChange } from './activity.js';
export type { SseQueuedRequest } from './outbox.js';
export type { SseOptions, SseIntercept, SseJson } from './options.js';
export type { SseEventListener, SseListenerInput } from './listeners.js';
export type { SseEventMap, SseMessage, SseTypedListener, SseTypedListeners } from './typed-events.js';
export type { SsePresence, SsePresenceEvent } from './channels.js';
export type { SseWindowEvent, SseWindowEventDetail } from './event-bus.js';
export { SseClientError, SseRequestError } from './errors.js';
export { VERSION } from './version.js';
