import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gunzip, gzip } from 'node:zlib';
import type { Context } from 'koa';
import { SseNotBuiltError } from '../core/errors.js';
import type { PublicCall } from './call.js';

/** One built variant of the browser client, read and compressed once, kept in memory. */
interface Script {
  /** The content hash: the strong ETag of the plain body, and the `?v=` of a versioned URL. */
  hash: string;
  /** The body in each encoding. */
  bodies: Record<Encoding, Buffer>;
}

type Encoding = 'br' | 'gzip' | 'identity';
/** Suffix of the ETag of each encoding: a compressed body is another representation (RFC 9110 §8.8.3). */
const ETAG_SUFFIX: Record<Encoding, string> = { br: '-br', gzip: '-gz', identity: '' };
/** A year: a versioned URL's body never changes, a new build has a new `?v=`. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

const FILES = { module: 'sse.js', classic: 'sse.classic.js', tabs: 'sse-tabs.js' } as const;
/**
 * The browser client's builds: an ES module, or a classic script defining `window.Sse`; and
 * the tab-sharing part (an ES module both load, by dynamic import, only for `shareAcrossTabs`).
 */
export type Variant = keyof typeof FILES;

/**
 * Where `npm run build` puts the bundle, seen from this file: `lib/http/` when running from
 * source (→ `dist/browser/`), `dist/lib/http/` when running the build (→ `dist/browser/`).
 */
const DIRS = [new URL('../../dist/browser/', import.meta.url), new URL('../../browser/', import.meta.url)];

/**
 * `GET {base}` and `GET {base}/sse.js`: the browser client as an ES module, or with
 * `?script-type=classic` as a classic script defining `window.Sse`. Public (no login): it is
 * code, not data. Compressed with brotli or gzip as the browser accepts (`Vary:
 * Accept-Encoding`). Plain URLs: strong ETag and `Cache-Control: no-cache`, so browsers
 * revalidate and pick up a new version as soon as the server has one, at the cost of a 304.
 * A versioned URL (`?v=<content hash>`, from {@link clientUrl}) is cached for a year.
 */
export async function script({ ctx }: PublicCall): Promise<void> {
  return serve(ctx, ctx.query['script-type'] === 'classic' ? 'classic' : 'module');
}

/**
 * `GET {base}/sse-tabs.js`: the client's tab sharing (`shareAcrossTabs`), an ES module that
 * the client imports from `{url}/sse-tabs.js` only when a page asks for it, so that the other
 * pages do not load it. Public and cached like {@link script}.
 */
export async function tabsScript({ ctx }: PublicCall): Promise<void> {
  return serve(ctx, 'tabs');
}

async function serve(ctx: Context, variant: Variant): Promise<void> {
  const found = await load(variant);
  if (found === undefined) throw new SseNotBuiltError('The browser client', 'ERR_SSE_CLIENT_NOT_BUILT');
  const encoding = encodingFor(ctx);
  const etag = `"${found.hash}${ETAG_SUFFIX[encoding]}"`;
  ctx.vary('Accept-Encoding');
  ctx.set('Cache-Control', ctx.query.v === found.hash ? IMMUTABLE : 'no-cache');
  ctx.set('ETag', etag);
  ctx.set('X-Content-Type-Options', 'nosniff');
  if (matches(ctx, etag)) {
    ctx.status = 304;
    return;
  }
  ctx.status = 200;
  ctx.type = 'text/javascript; charset=utf-8';
  if (encoding !== 'identity') ctx.set('Content-Encoding', encoding);
  ctx.body = found.bodies[encoding];
}

/**
 * The versioned URL of the browser client under `base` (`{base}/sse.js?v=<content hash>`), for
 * a page rendered by the server: browsers cache it for a year and fetch the next build's URL
 * when it changes. Undefined when the client is not built.
 */
export async function clientUrl(base: string, variant: Exclude<Variant, 'tabs'> = 'module'): Promise<string | undefined> {
  const found = await load(variant);
  if (found === undefined) return undefined;
  return `${base}/sse.js?${variant === 'classic' ? 'script-type=classic&' : ''}v=${found.hash}`;
}

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

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
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 32);
    const [br, gz] = await Promise.all([
      brotliAsync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } }),
      prebuiltGzip(new URL(`${file}.gz`, dir), body).then((found) => found ?? gzipAsync(body, { level: zlib.Z_BEST_COMPRESSION })),
    ]);
    return { hash, bodies: { br, gzip: gz, identity: body } };
  }
  return undefined;
}

/**
 * @internal The build's gzip of a variant (`sse.js.gz`, by zopfli: a few % smaller than zlib's best),
 * when there is one and it unpacks to exactly `body` (not left over from another build).
 */
export async function prebuiltGzip(file: URL, body: Buffer): Promise<Buffer | undefined> {
  try {
    const gz = await readFile(file);
    return (await gunzipAsync(gz)).equals(body) ? gz : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Brotli, else gzip, else none. Ours to prefer: negotiation alone picks the first the browser
 * lists (gzip before br). No `Accept-Encoding` at all (curl, a script) gets the plain body,
 * though the RFC would allow any.
 */
function encodingFor(ctx: Context): Encoding {
  if (ctx.get('accept-encoding') === '') return 'identity';
  if (ctx.acceptsEncodings('br') === 'br') return 'br';
  if (ctx.acceptsEncodings('gzip') === 'gzip') return 'gzip';
  return 'identity';
}

/** `If-None-Match` with the weak comparison RFC 9110 prescribes for it. */
function matches(ctx: Context, etag: string): boolean {
  const header = ctx.get('If-None-Match');
  if (header === '') return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
