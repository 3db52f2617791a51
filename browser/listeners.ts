import type { SseCloseTrigger } from './close-trigger.js';

/**
 * A listener of one event name. `this` is the client. A `connect-close` listener also gets
 * who closed and why (the same fields are set on the event); `sse-change-active` has an
 * {@link SseActiveChange} object as `data`, every other event the frame's text.
 */
export type SseEventListener = {
  // A method's parameters compare bivariantly: `(e, info: SseCloseTrigger) => …` fits too.
  listener(this: unknown, event: MessageEvent<string>, closeInfo?: SseCloseTrigger): void;
}['listener'];

/**
 * Listeners by event name. `null` registers the name without a function: the server then
 * sends it and the window event bus forwards it.
 */
export type SseListenerInput = Record<string, SseEventListener | readonly SseEventListener[] | null | undefined>;

/** Events the protocol itself uses: they can be listened to locally, never sent to the server as listeners. */
export const PROTOCOL_EVENTS: ReadonlySet<string> = new Set([
  'connect-finish',
  'connect-close',
  'sse-set-duration',
  'sse-change-active',
  'sse-channels',
  'sse-recovery',
]);

const NAME = /^[^\r\n\0,]{1,128}$/;

/** One `(name, function-or-null)` pair of an add/remove call. */
export type ListenerEntry = readonly [name: string, fn: SseEventListener | null];

/**
 * Normalizes the accepted argument shapes: `(name, fn?)`, a map of names to functions (or
 * arrays of functions, or `null`), or an array of names.
 */
export function toEntries(nameOrMap: string | SseListenerInput | readonly string[], fn?: SseEventListener | null): ListenerEntry[] {
  const entries: ListenerEntry[] = [];
  if (typeof nameOrMap === 'string') entries.push([nameOrMap, fn ?? null]);
  else if (Array.isArray(nameOrMap)) for (const name of nameOrMap as readonly string[]) entries.push([name, null]);
  else if (nameOrMap !== null && typeof nameOrMap === 'object') {
    for (const [name, value] of Object.entries(nameOrMap as SseListenerInput)) {
      if (Array.isArray(value)) for (const f of value as readonly SseEventListener[]) entries.push([name, f]);
      else entries.push([name, (value as SseEventListener | null | undefined) ?? null]);
    }
  } else {
    throw new TypeError('Expected event names');
  }
  for (const [name, f] of entries) {
    if (typeof name !== 'string' || !NAME.test(name)) throw new TypeError(`Invalid event name ${JSON.stringify(name)}`);
    if (f !== null && typeof f !== 'function') throw new TypeError(`Listener of ${name} not a function`);
  }
  return entries;
}

/** The local listener table: names (what the server is told) and the functions of each. */
export class ListenerRegistry {
  readonly #byName = new Map<string, Set<SseEventListener>>();

  /** Names registered, for the server (protocol events excluded). */
  serverNames(): string[] {
    return [...this.#byName.keys()].filter((name) => !PROTOCOL_EVENTS.has(name));
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** A snapshot of the functions of `name` (safe against changes during dispatch). */
  get(name: string): SseEventListener[] {
    const fns = this.#byName.get(name);
    return fns === undefined ? [] : [...fns];
  }

  /** Adds the entries; returns the names that are new. */
  add(entries: readonly ListenerEntry[]): string[] {
    const added: string[] = [];
    for (const [name, fn] of entries) {
      let fns = this.#byName.get(name);
      if (fns === undefined) {
        fns = new Set();
        this.#byName.set(name, fns);
        added.push(name);
      }
      if (fn !== null) fns.add(fn);
    }
    return added;
  }

  /**
   * Removes the entries: a function from its name, or with `null` the whole name. A name left
   * without functions is removed too. Returns the names that are gone.
   */
  remove(entries: readonly ListenerEntry[]): string[] {
    const removed: string[] = [];
    for (const [name, fn] of entries) {
      const fns = this.#byName.get(name);
      if (fns === undefined || (fn !== null && !fns.delete(fn))) continue;
      if (fn === null || fns.size === 0) {
        this.#byName.delete(name);
        removed.push(name);
      }
    }
    return removed;
  }

  /**
   * Adds or removes the entries; answers the names to tell the server. Java pages expect every
   * name they add to be (re)sent (`always`); a removal sends only the names now gone.
   */
  change(add: boolean, entries: readonly ListenerEntry[], always: boolean): string[] {
    const changed = add ? this.add(entries) : this.remove(entries);
    return [...new Set(always && add ? entries.map(([name]) => name) : changed)].filter((name) => !PROTOCOL_EVENTS.has(name));
  }

  /** The table as a listener map: `null` for a name alone, the function, or an array of several. */
  snapshot(): Record<string, SseEventListener | SseEventListener[] | null> {
    const out: Record<string, SseEventListener | SseEventListener[] | null> = {};
    for (const [name, fns] of this.#byName) out[name] = fns.size === 0 ? null : fns.size === 1 ? [...fns][0]! : [...fns];
    return out;
  }

  clear(): void {
    this.#byName.clear();
  }
}
