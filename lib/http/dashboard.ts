import { readFile } from 'node:fs/promises';
import { SseNotBuiltError } from '../core/errors.js';
import type { UserCall } from './call.js';

/**
 * Where `npm run build` puts the page, seen from this file: `lib/http/` when running from
 * source (→ `dist/dashboard/`), `dist/lib/http/` when running the build (→ `dist/dashboard/`).
 */
const DIRS = [new URL('../../dist/dashboard/', import.meta.url), new URL('../../dashboard/', import.meta.url)];
const FILE = 'dashboard.html';

/**
 * `GET {base}/dashboard` (admin): the live admin dashboard, one self-contained page (script,
 * styles and chart library inline; its own Content-Security-Policy allows nothing else). It
 * polls the admin endpoints with the query string it was loaded with and the page's cookies,
 * so it logs in as the app's other clients do: e.g. `{base}/dashboard?access-token=…`.
 */
export async function dashboard({ ctx }: UserCall): Promise<void> {
  const page = await load();
  if (page === undefined) throw new SseNotBuiltError('The dashboard', 'ERR_SSE_DASHBOARD_NOT_BUILT');
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Content-Security-Policy', "frame-ancestors 'none'");
  // The URL may carry a login token: never send it on as a referrer.
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.status = 200;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = page;
}

let cached: Promise<Buffer | undefined> | undefined;

/** Reads the page once; while it is missing, looks again on every request (until built). */
function load(): Promise<Buffer | undefined> {
  if (cached === undefined) {
    const pending = read();
    cached = pending;
    void pending.then((found) => {
      if (found === undefined && cached === pending) cached = undefined;
    });
  }
  return cached;
}

async function read(): Promise<Buffer | undefined> {
  for (const dir of DIRS) {
    try {
      return await readFile(new URL(FILE, dir));
    } catch {
      // not there: try the next place
    }
  }
  return undefined;
}
