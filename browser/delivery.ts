import type { SseCloseTrigger } from './close-trigger.js';
import { dispatchOnWindow } from './event-bus.js';
import type { ListenerRegistry } from './listeners.js';
import type { ResolvedOptions } from './options.js';
import { addPayload } from './typed-events.js';

/**
 * How an event reaches the page: as a `MessageEvent` with `url` set (as the Java client
 * does), through the intercepts (application events only), the listeners, then the window
 * event bus. Listeners and intercepts run with the client as `this`; one that throws is
 * reported and does not stop the others.
 */
export class EventDelivery {
  readonly #client: object;
  readonly #listeners: ListenerRegistry;
  readonly #o: Pick<ResolvedOptions, 'url' | 'intercepts' | 'useWindowEventBus' | 'windowGlobal' | 'json'>;

  constructor(
    client: object,
    listeners: ListenerRegistry,
    o: Pick<ResolvedOptions, 'url' | 'intercepts' | 'useWindowEventBus' | 'windowGlobal' | 'json'>,
  ) {
    this.#client = client;
    this.#listeners = listeners;
    this.#o = o;
  }

  /** A `MessageEvent` as listeners get it, with `url` set. */
  message(type: string, data: unknown, lastEventId = ''): MessageEvent<string> {
    const message = new MessageEvent(type, { data, lastEventId, origin: originOf(this.#o.url) });
    Object.defineProperty(message, 'url', { value: this.#o.url, enumerable: true });
    addPayload(message, (text) => this.#o.json.parse(text));
    return message as MessageEvent<string>;
  }

  /**
   * Runs intercepts (with `intercept`), listeners, then the window event bus (for registered
   * names, or every time with `toWindow`). A `connect-close` carries `trigger`: set on the
   * event and given as the listeners' second argument.
   */
  deliver(message: MessageEvent<string>, intercept: boolean, trigger?: SseCloseTrigger, toWindow = false): void {
    const registered = this.#listeners.has(message.type);
    if (!registered && !toWindow && !(intercept && this.#o.intercepts.length > 0)) return;
    if (trigger !== undefined) {
      Object.defineProperties(message, {
        whoTriggerClose: { value: trigger.whoTriggerClose, enumerable: true },
        closeReason: { value: trigger.closeReason, enumerable: true },
      });
    }
    if (intercept) {
      for (const fn of this.#o.intercepts) {
        try {
          if (fn.call(this.#client, message) === false) return;
        } catch (err) {
          report(err);
        }
      }
    }
    for (const fn of this.#listeners.get(message.type)) {
      try {
        fn.call(this.#client, message, trigger);
      } catch (err) {
        report(err);
      }
    }
    if ((registered || toWindow) && this.#o.useWindowEventBus) dispatchOnWindow(this.#o.windowGlobal, message, this.#o.url);
  }
}

/** A page callback threw: reported as an uncaught error, without stopping the client. */
export function report(err: unknown): void {
  if (typeof reportError === 'function') reportError(err);
  else console.error(err);
}

function originOf(url: string): string {
  try {
    return new URL(url, location.href).origin;
  } catch {
    return '';
  }
}
