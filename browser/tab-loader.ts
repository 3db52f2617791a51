import { VERSION } from './version.js';

/** The tab-sharing chunk's exports (types only here: the chunk is not in the client's bundle). */
export type TabSharing = typeof import('./tab-sharing.js');

/**
 * Loads the tab-sharing chunk from the system the client talks to (`{url}/sse-tabs.js`, served
 * by the plugin beside `sse.js`), by a dynamic import: the module build and the classic script
 * both load it, only when `shareAcrossTabs` is on and the browser can share.
 */
export function loadTabSharing(url: string): Promise<TabSharing> {
  const chunk = `${url}/sse-tabs.js?sse-version=${encodeURIComponent(VERSION)}`;
  return import(/* @vite-ignore */ /* webpackIgnore: true */ chunk) as Promise<TabSharing>;
}
