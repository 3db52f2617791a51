#!/usr/bin/env node
// Builds the browser client (browser/*.ts) into dist/browser/:
//   sse.js          one minified ES module (default export Sse, named sseEventListener)
//   sse.classic.js  the same as a classic script defining window.Sse
//   sse-tabs.js     tab sharing (shareAcrossTabs), an ES module both import from {base}/sse-tabs.js
//                   only when a page asks for it (browser/tab-loader.ts)
// The version comes from package.json. Type definitions are emitted separately by
// `tsc -p browser/tsconfig.json` into dist/browser/types/. `--sizes` prints raw/gzip sizes.
import { build } from 'esbuild';
import { readFile, stat } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';

const root = new URL('../', import.meta.url);
const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));
const outdir = new URL('dist/browser/', root);

const common = {
  bundle: true,
  minify: true,
  target: ['es2022', 'chrome105', 'firefox105', 'safari15.4'],
  platform: 'browser',
  define: { __SSE_CLIENT_VERSION__: JSON.stringify(pkg.version) },
  banner: { js: `/*! koa-sse-server browser client ${pkg.version} | MIT */` },
  legalComments: 'none',
  logLevel: 'warning',
  sourcemap: false,
};

await Promise.all([
  build({ ...common, entryPoints: [new URL('browser/index.ts', root).pathname], format: 'esm', outfile: new URL('sse.js', outdir).pathname }),
  build({
    ...common,
    entryPoints: [new URL('browser/classic.ts', root).pathname],
    format: 'iife',
    outfile: new URL('sse.classic.js', outdir).pathname,
  }),
  build({
    ...common,
    entryPoints: [new URL('browser/tab-sharing.ts', root).pathname],
    format: 'esm',
    outfile: new URL('sse-tabs.js', outdir).pathname,
  }),
]);

if (process.argv.includes('--sizes')) {
  for (const name of ['sse.js', 'sse.classic.js', 'sse-tabs.js']) {
    const file = new URL(name, outdir);
    const bytes = await readFile(file);
    console.log(`dist/browser/${name}: ${(await stat(file)).size} bytes minified, ${gzipSync(bytes, { level: 9 }).length} bytes gzipped`);
  }
}
