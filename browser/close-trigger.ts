/** Who ended a connection, as the Java client tells `connect-close` handlers. */
export const SERVER_TRIGGER_CLOSE = 'server';
export const CLIENT_TRIGGER_CLOSE = 'client';

/**
 * The second argument of a `connect-close` handler (its two fields are also set on the
 * event): who closed, and why (`reason` of the server's `connect-close`, or the reason given
 * to `close()`).
 */
export interface SseCloseTrigger {
  whoTriggerClose: typeof SERVER_TRIGGER_CLOSE | typeof CLIENT_TRIGGER_CLOSE;
  closeReason: string;
}
