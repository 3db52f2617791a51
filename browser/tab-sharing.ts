/**
 * Entry of the tab-sharing chunk (`{base}/sse-tabs.js`, built apart by
 * scripts/build-browser.mjs): what `shareAcrossTabs` needs, loaded by the client only when a
 * page asks for it (tab-loader.ts), so that a page that does not share tabs never loads it.
 * It imports nothing of the client's state: the client hands it its parts (TabClient).
 */
export { tabGroupFor } from './tab-group.js';
