#!/usr/bin/env node
// Builds the browser client (browser/*.ts) into dist/browser/:
//   sse.js          one minified ES module (default export Sse, named sseEventListener)
//   sse.classic.js  the same as a classic script defining window.Sse
//   sse-tabs.js     tab sharing (shareAcrossTabs), an ES module both import from {base}/sse-tabs.js
//                   only when a page asks for it (browser/tab-loader.ts)
// The version comes from package.json. Type definitions are emitted separately by
// `tsc -p browser/tsconfig.json` into dist/browser/types/. `--sizes` prints raw/gzip/brotli sizes.
// The client's internal property names are shortened (INTERNAL_PROPS), with one mangle cache for
// the three builds: the chunk and the module it is loaded by agree on them. esbuild bundles and
// minifies; terser then minifies its output once more (its compressor and its choice of local
// names save another ~1.5% gzipped: the client stays within 10 KB gzipped, test/script-delivery.test.ts).
// Each file also gets a `.gz` twin compressed by zopfli.
import { gzipAsync as zopfli } from '@gfx/zopfli';
import { build } from 'esbuild';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { minify } from 'terser';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { INTERNAL_PROPS } from './browser-internal-props.mjs';

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

const mangleProps = new RegExp(`^(${INTERNAL_PROPS.join('|')})$`);
const entries = [
  { entry: 'browser/index.ts', format: 'esm', out: 'sse.js' },
  { entry: 'browser/classic.ts', format: 'iife', out: 'sse.classic.js' },
  { entry: 'browser/tab-sharing.ts', format: 'esm', out: 'sse-tabs.js' },
];
const entryPoint = (entry) => new URL(entry, root).pathname;

// Every property name each build keeps as written (a probe that would shorten them all): a
// short name must be none of them, in any build, or an object handed from one build to the
// other could end up with two members of one name.
const kept = new Set();
for (const { entry, format } of entries) {
  const probe = await build({ ...common, entryPoints: [entryPoint(entry)], format, write: false, mangleProps: /./, mangleCache: {} });
  for (const name of Object.keys(probe.mangleCache)) if (!INTERNAL_PROPS.includes(name)) kept.add(name);
}
let mangleCache = Object.fromEntries([...kept].map((name) => [name, false]));
for (const { entry, format, out } of entries) {
  const result = await build({ ...common, entryPoints: [entryPoint(entry)], format, write: false, mangleProps, mangleCache });
  mangleCache = result.mangleCache;
  const [output] = result.outputFiles;
  // Property names are esbuild's business (above): terser leaves them alone.
  const min = await minify(output.text, {
    module: format === 'esm',
    ecma: 2022,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: /^!/ },
  });
  await mkdir(outdir, { recursive: true });
  await writeFile(new URL(out, outdir), min.code);
  // Its gzip form, by zopfli (4% smaller than zlib's best; any gzip reader reads it): the
  // plugin serves it when it matches the file (lib/http/script.ts), else compresses itself.
  await writeFile(new URL(`${out}.gz`, outdir), await zopfli(Buffer.from(min.code), { numiterations: 15 }));
}
const clash = Object.entries(mangleCache).filter(([, short]) => short !== false && kept.has(short));
if (clash.length > 0) throw new Error(`build-browser: shortened names clash with kept ones: ${JSON.stringify(clash)}`);

if (process.argv.includes('--sizes')) {
  for (const name of ['sse.js', 'sse.classic.js', 'sse-tabs.js']) {
    const file = new URL(name, outdir);
    const bytes = await readFile(file);
    const zopfliBytes = (await stat(new URL(`${name}.gz`, outdir))).size;
    const brotli = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
    console.log(
      `dist/browser/${name}: ${(await stat(file)).size} bytes minified, ${gzipSync(bytes, { level: 9 }).length} gzipped (zlib -9), ${zopfliBytes} (zopfli), ${brotli.length} brotli`,
    );
  }
}
