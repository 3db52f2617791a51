import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Context } from 'koa';
import { sendJson } from './response.js';
import type { PublicCall } from './call.js';

/** One built variant of the browser client, read once and kept in memory. */
interface Script {
  body: Buffer;
  etag: string;
}

const FILES = { module: 'sse.js', classic: 'sse.classic.js' } as const;
type Variant = keyof typeof FILES;

/**
 * Where `npm run build` puts the bundle, seen from this file: `lib/http/` when running from
 * source (→ `dist/browser/`), `dist/lib/http/` when running the build (→ `dist/browser/`).
 */
const DIRS = [new URL('../../dist/browser/', import.meta.url), new URL('../../browser/', import.meta.url)];

/**
 * `GET {base}` and `GET {base}/sse.js`: the browser client as an ES module, or with
 * `?script-type=classic` as a classic script defining `window.Sse`. Public (no login): it is
 * code, not data. Strong ETag and `Cache-Control: no-cache`, so browsers revalidate and pick
 * up a new version as soon as the server has one, at the cost of a 304.
 */
export async function script({ ctx }: PublicCall): Promise<void> {
  const variant: Variant = ctx.query['script-type'] === 'classic' ? 'classic' : 'module';
  const found = await load(variant);
  if (found === undefined) {
    sendJson(ctx, 503, {
      success: false,
      code: 'ERR_SSE_CLIENT_NOT_BUILT',
      status: 503,
      data: null,
      message: 'The browser client is not built: run `npm run build`',
      errorMessage: 'The browser client is not built: run `npm run build`',
    });
    return;
  }
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('ETag', found.etag);
  ctx.set('X-Content-Type-Options', 'nosniff');
  if (matches(ctx, found.etag)) {
    ctx.status = 304;
    return;
  }
  ctx.status = 200;
  ctx.type = 'text/javascript; charset=utf-8';
  ctx.body = found.body;
}

const cache = new Map<Variant, Promise<Script | undefined>>();

/** Reads a variant once; a missing bundle is looked for again on the next request (until built). */
function load(variant: Variant): Promise<Script | undefined> {
  let pending = cache.get(variant);
  if (pending === undefined) {
    pending = read(FILES[variant]);
    cache.set(variant, pending);
    void pending.then((found) => {
      if (found === undefined) cache.delete(variant);
    });
  }
  return pending;
}

async function read(file: string): Promise<Script | undefined> {
  for (const dir of DIRS) {
    let body: Buffer;
    try {
      body = await readFile(new URL(file, dir));
    } catch {
      continue;
    }
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
    return { body, etag };
  }
  return undefined;
}

/** `If-None-Match` with the weak comparison RFC 9110 prescribes for it. */
function matches(ctx: Context, etag: string): boolean {
  const header = ctx.get('If-None-Match');
  if (header === '') return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
