#!/usr/bin/env node
// Builds the admin dashboard (dashboard/*.ts, its CSS and uPlot's) into one self-contained
// page, dist/dashboard/dashboard.html: script and styles inline, nothing loaded from elsewhere,
// locked down by a Content-Security-Policy that allows exactly that script and those styles
// (by hash) and requests to the page's own origin. lib/http/dashboard.ts serves it at
// `{base}/dashboard`. `--sizes` prints raw/gzip sizes.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';

const root = new URL('../', import.meta.url);
const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));
const uplot = JSON.parse(await readFile(new URL('node_modules/uplot/package.json', root), 'utf8'));
const outdir = new URL('dist/dashboard/', root);

const result = await build({
  entryPoints: [new URL('dashboard/main.ts', root).pathname],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2022', 'chrome105', 'firefox105', 'safari15.4'],
  platform: 'browser',
  outdir: outdir.pathname,
  write: false,
  banner: {
    js: `/*! koa-sse-server dashboard ${pkg.version} | MIT. Includes uPlot ${uplot.version} (c) Leon Sorokin | MIT */`,
  },
  legalComments: 'none',
  logLevel: 'warning',
});

const output = (ext) => {
  const file = result.outputFiles.find((f) => f.path.endsWith(ext));
  if (file === undefined) throw new Error(`esbuild produced no ${ext} file`);
  return file.text.trim();
};
const js = output('.js');
const css = output('.css');
// Inline, the code must not close its own element early.
if (/<\/script/i.test(js)) throw new Error('the dashboard script contains "</script"');
if (/<\/style/i.test(css)) throw new Error('the dashboard styles contain "</style"');

const hash = (text) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
const csp = [
  "default-src 'none'",
  `script-src ${hash(js)}`,
  `style-src ${hash(css)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const template = await readFile(new URL('dashboard/page.html', root), 'utf8');
const slots = {
  '<!--CSP-->': `<meta http-equiv="Content-Security-Policy" content="${csp}">`,
  '<!--STYLE-->': `<style>${css}</style>`,
  '<!--SCRIPT-->': `<script>${js}</script>`,
};
let html = template;
for (const [slot, content] of Object.entries(slots)) {
  if (!html.includes(slot)) throw new Error(`dashboard/page.html has no ${slot}`);
  // A function, not a string: `$&` and the like in minified code must stay as they are.
  html = html.replace(slot, () => content);
}

await mkdir(outdir, { recursive: true });
await writeFile(new URL('dashboard.html', outdir), html);

if (process.argv.includes('--sizes')) {
  const bytes = Buffer.from(html);
  console.log(
    `dist/dashboard/dashboard.html: ${bytes.length} bytes (script ${Buffer.byteLength(js)}, styles ${Buffer.byteLength(css)}), ` +
      `${gzipSync(bytes, { level: 9 }).length} bytes gzipped`,
  );
}
