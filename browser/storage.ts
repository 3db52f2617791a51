/** Where storage is read from: the `windowGlobal` option (a window, or undefined outside a page). */
export type StorageHost = Pick<Window, 'localStorage' | 'sessionStorage'> | undefined;

/**
 * `localStorage` / `sessionStorage` that never throws: storage can be disabled (privacy
 * modes, sandboxed frames), and a client must still work without it.
 */
export function readStorage(host: StorageHost, kind: 'local' | 'session', key: string): string | null {
  try {
    return host === undefined ? null : (kind === 'local' ? host.localStorage : host.sessionStorage).getItem(key);
  } catch {
    return null;
  }
}

export function writeStorage(host: StorageHost, kind: 'local' | 'session', key: string, value: string | null): void {
  try {
    if (host === undefined) return;
    const storage = kind === 'local' ? host.localStorage : host.sessionStorage;
    if (value === null) storage.removeItem(key);
    else storage.setItem(key, value);
  } catch {
    // storage unavailable: the value lives only in memory
  }
}
