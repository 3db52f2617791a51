// ava configuration of the browser suite: `node scripts/test.mjs` runs it separately, inside a
// loopback-only network namespace (Chromium must never reach a real network). Everything but
// `files` is the package.json configuration.
import { readFileSync } from 'node:fs';

const { ava } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

export default { ...ava, files: ['test/browser/**/*.test.ts'] };
