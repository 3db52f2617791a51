/** Web Locks and BroadcastChannel both exist (else a tab keeps a stream of its own). */
export function canShareTabs(): boolean {
  return typeof BroadcastChannel === 'function' && typeof navigator !== 'undefined' && typeof navigator.locks?.request === 'function';
}
