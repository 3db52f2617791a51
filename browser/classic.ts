/**
 * Entry of the classic-script build (`{base}/sse.js?script-type=classic`): defines
 * `window.Sse` (the class, with `Sse.sseEventListener`, `Sse.SseClientError` and
 * `Sse.SseRequestError`) for pages that cannot use modules.
 */
import { SseClientError, SseRequestError } from './errors.js';
import { sseEventListener } from './listen.js';
import Sse from './sse.js';

declare global {
  interface Window {
    Sse?: typeof Sse & { sseEventListener: typeof sseEventListener };
  }
}

if (window.Sse === undefined) window.Sse = Object.assign(Sse, { sseEventListener, SseClientError, SseRequestError });
