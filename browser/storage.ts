/**
 * `localStorage` / `sessionStorage` that never throws: storage can be disabled (privacy
 * modes, sandboxed frames), and a client must still work without it.
 */
export function readStorage(kind: 'local' | 'session', key: string): string | null {
  try {
    return (kind === 'local' ? localStorage : sessionStorage).getItem(key);
  } catch {
    return null;
  }
}

export function writeStorage(kind: 'local' | 'session', key: string, value: string): void {
  try {
    (kind === 'local' ? localStorage : sessionStorage).setItem(key, value);
  } catch {
    // storage unavailable: the value lives only in memory
  }
}
