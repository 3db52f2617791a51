import busboy from 'busboy';
import parse from 'co-body';
import type { Context } from 'koa';
import { SseBadRequestError, SseError, SsePayloadTooLargeError, SseUnsupportedMediaTypeError } from '../core/errors.js';
import type { UploadedFile, UploadFields } from './plugin-options.js';

/** Limits of a multipart upload. */
export interface MultipartLimits {
  /** Total bytes of all files. */
  totalBytes: number;
  /** Most files. */
  maxFiles: number;
}

const FIELD_LIMIT = 64 * 1024;
const MAX_FIELDS = 100;
/** Deepest nesting of arrays and objects a JSON body may have: deeper ones are refused (400) before parsing. */
const MAX_JSON_DEPTH = 64;

/**
 * Reads a JSON body of at most `limit` bytes. An empty body gives `undefined`. A body must
 * say `Content-Type: application/json` (or `+json`): an HTML form or a `no-cors` fetch of
 * another site cannot send that without a CORS preflight, which this server never grants,
 * so a state-changing JSON endpoint cannot be triggered cross-site.
 */
export async function readJson(ctx: Context, limit: number): Promise<unknown> {
  const parsed = parsedBody(ctx);
  if (parsed !== NOT_PARSED) return parsed;
  // An empty body (no length, or length 0) has nothing to parse and needs no type.
  const hasBody = requestHasBody(ctx);
  if (hasBody && !isJsonType(ctx.get('content-type'))) {
    throw new SseUnsupportedMediaTypeError('Send this body as JSON with Content-Type: application/json');
  }
  const length = Number(ctx.get('content-length') || NaN);
  if (length > limit) throw tooLarge(ctx, 'JSON body', limit);
  try {
    const raw = (await parse.text(ctx.req, { limit, encoding: 'utf8' })) as string;
    if (raw.trim() === '') return undefined;
    assertJsonDepth(raw);
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw mapBodyError(ctx, err, 'JSON body', limit);
  }
}

/** Reads a JSON body that must be an object. */
export async function readJsonObject(ctx: Context, limit: number): Promise<Record<string, unknown>> {
  const body = await readJson(ctx, limit);
  if (body === undefined) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new SseBadRequestError('The body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

/**
 * Reads the small form a beacon sends: multipart (FormData), urlencoded, JSON or text.
 * Files in it are skipped. Bounded by `limit`.
 */
export async function readBeaconForm(ctx: Context, limit: number): Promise<Record<string, unknown>> {
  const parsed = parsedBody(ctx);
  if (parsed !== NOT_PARSED) {
    if (parsed === undefined) return {};
    // Without a prototype, like our own parse: a key `__proto__` stays a field.
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
      return Object.assign(Object.create(null) as Record<string, unknown>, parsed);
    throw new SseBadRequestError('The body must be a form or a JSON object');
  }
  const type = ctx.get('content-type').toLowerCase();
  if (type.startsWith('multipart/') || type.startsWith('application/x-www-form-urlencoded')) {
    return (await readMultipart(ctx, { totalBytes: 0, maxFiles: 0 }, limit)).fields;
  }
  const length = Number(ctx.get('content-length') || NaN);
  if (length > limit) throw tooLarge(ctx, 'Body', limit);
  let raw: string;
  try {
    raw = (await parse.text(ctx.req, { limit, encoding: 'utf8' })) as string;
  } catch (err) {
    throw mapBodyError(ctx, err, 'Body', limit);
  }
  const text = raw.trim();
  if (text === '') return {};
  if (text.startsWith('{')) {
    assertJsonDepth(text);
    try {
      const body = JSON.parse(text) as unknown;
      if (body !== null && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
    } catch {
      // not JSON: fall through to a query string
    }
    throw new SseBadRequestError('Malformed JSON body');
  }
  return fieldMap(new URLSearchParams(text));
}

const NOT_PARSED = Symbol('not parsed');

/** Whether the request declares a body (a length above 0, or chunked). */
function requestHasBody(ctx: Context): boolean {
  return ctx.get('transfer-encoding') !== '' || Number(ctx.get('content-length') || 0) > 0;
}

/**
 * The body another middleware already read (`app.use(bodyParser())` before the plugin:
 * @koa/bodyparser, koa-body), which leaves the request stream empty: its parse is used, with
 * its own size limit, checked for depth like ours. `NOT_PARSED` when nobody read it: then it
 * is parsed here. An empty body, which parsers give as `{}`, is `undefined` like ours.
 */
function parsedBody(ctx: Context): unknown {
  const body = (ctx.request as { body?: unknown }).body;
  if (body === undefined) return NOT_PARSED;
  // A parser gives `{}` for a request without a body; a client's own `{}` stays `{}`.
  if (!requestHasBody(ctx)) return undefined;
  if (typeof body === 'string') {
    // A text parse (koa-body's `text`): JSON in it is parsed as we would.
    if (body.trim() === '') return undefined;
    assertJsonDepth(body);
    try {
      return JSON.parse(body) as unknown;
    } catch (err) {
      throw new SseBadRequestError('Malformed JSON body', { cause: err });
    }
  }
  if (depthExceeds(body, MAX_JSON_DEPTH)) throw new SseBadRequestError(`The JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`);
  return body;
}

/** Whether a parsed value nests deeper than `max` (stops walking there). */
function depthExceeds(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (max === 0) return true;
  for (const item of Object.values(value)) if (depthExceeds(item, max - 1)) return true;
  return false;
}

/**
 * Fields as a map without a prototype: a field named `toString`, `hasOwnProperty` or
 * `__proto__` is just a value, never a built-in method or a prototype change.
 */
function fieldMap(entries: Iterable<[string, string]>): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const [name, value] of entries) out[name] = value;
  return out;
}

/**
 * Refuses a JSON text nested deeper than {@link MAX_JSON_DEPTH}: parsing it works, but anything
 * that walks it later (JSON.stringify, a clone) overflows the stack. Refused here, where it is
 * the client's mistake.
 */
function assertJsonDepth(text: string): void {
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw new SseBadRequestError(`The JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`);
}

/** The deepest nesting of `[` and `{` outside strings (linear, no allocation). */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* backslash */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > max) max = depth;
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
    }
  }
  return max;
}

/**
 * Streams a multipart (or urlencoded) body through busboy. Files are collected in memory,
 * bounded by `limits.totalBytes`; past a limit the rest of the body is drained and a 413
 * thrown, so the client still gets an answer.
 */
export async function readMultipart(
  ctx: Context,
  limits: MultipartLimits,
  fieldBytes = FIELD_LIMIT,
): Promise<{ fields: UploadFields; files: UploadedFile[] }> {
  if (ctx.req.readableEnded || (ctx.request as { files?: unknown }).files !== undefined) {
    // Another middleware (koa-body with `multipart: true`) read the upload: busboy would see an
    // empty body and the handler no files. The app's setup is wrong; say how to fix it (500).
    throw new Error(`${ctx.path}: the upload was already read by another body parser; exclude the SSE upload paths from it`);
  }
  const length = Number(ctx.get('content-length') || NaN);
  // Multipart framing adds some bytes per part: allow generous room. Refused up front when
  // declared, else once that many bytes came: a long field is truncated by busboy, which would
  // otherwise read (and drop) a chunked body to its end before answering.
  const maxBody = limits.totalBytes + fieldBytes * 4 + 64 * 1024;
  if (length > maxBody) throw tooLarge(ctx, 'Upload', limits.totalBytes);
  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: ctx.req.headers,
      limits: {
        fileSize: limits.totalBytes + 1,
        // maxFiles 0 means "skip files" (a beacon form), not "refuse a form that has one".
        files: limits.maxFiles === 0 ? Infinity : limits.maxFiles,
        fields: MAX_FIELDS,
        fieldSize: fieldBytes,
      },
    });
  } catch (err) {
    throw new SseUnsupportedMediaTypeError('Expected a multipart/form-data body with its boundary', { cause: err });
  }
  // No prototype: see fieldMap.
  const fields = Object.create(null) as UploadFields;
  const files: UploadedFile[] = [];
  let total = 0;

  return new Promise((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      ctx.req.unpipe(bb);
      ctx.req.resume(); // drain, so the answer reaches the client instead of a reset
      reject(err);
    };
    bb.on('file', (fieldName, stream, info) => {
      // A form that ends inside a file destroys the file stream with an error: without this
      // listener that error is uncaught and takes the process down.
      stream.on('error', (err: Error) => fail(new SseBadRequestError('Malformed form body', { cause: err })));
      if (limits.maxFiles === 0) {
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        if (failed) return;
        size += chunk.length;
        total += chunk.length;
        if (total > limits.totalBytes) {
          stream.resume();
          fail(tooLarge(ctx, 'Upload', limits.totalBytes));
          return;
        }
        chunks.push(chunk);
      });
      stream.on('limit', () => fail(tooLarge(ctx, 'Upload', limits.totalBytes)));
      stream.on('end', () => {
        if (failed) return;
        files.push({
          fieldName,
          filename: info.filename ?? '',
          mimeType: info.mimeType,
          encoding: info.encoding,
          size,
          data: Buffer.concat(chunks, size),
        });
      });
    });
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated || info.nameTruncated) {
        fail(tooLarge(ctx, `Form field ${name.slice(0, 32)}`, fieldBytes));
        return;
      }
      const prev = fields[name];
      fields[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    });
    bb.on('filesLimit', () => fail(tooLarge(ctx, `More than ${limits.maxFiles} files`, limits.totalBytes)));
    bb.on('fieldsLimit', () => fail(new SseBadRequestError(`More than ${MAX_FIELDS} form fields`)));
    bb.on('error', (err: Error) => fail(new SseBadRequestError('Malformed form body', { cause: err })));
    bb.on('close', () => {
      if (!failed) resolve({ fields, files });
    });
    ctx.req.on('aborted', () => fail(Object.assign(new Error('Request aborted'), { code: 'ECONNABORTED' })));
    let received = 0;
    ctx.req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBody) fail(tooLarge(ctx, 'Upload', limits.totalBytes));
    });
    ctx.req.pipe(bb);
  });
}

function tooLarge(ctx: Context, what: string, limit: number): SsePayloadTooLargeError {
  // The rest of the body is not read: close the socket after the answer rather than reuse it.
  ctx.set('Connection', 'close');
  return new SsePayloadTooLargeError(what, limit);
}

function mapBodyError(ctx: Context, err: unknown, what: string, limit: number): Error {
  // Already ours (e.g. the depth refusal): its message says what was wrong, keep it.
  if (err instanceof SseError) return err;
  const e = err as { status?: number; type?: string; message?: string };
  if (e.status === 413 || e.type === 'entity.too.large') return tooLarge(ctx, what, limit);
  if (e.status === 415 || e.type === 'encoding.unsupported') return new SseUnsupportedMediaTypeError('Unsupported Content-Encoding', { cause: err });
  if (err instanceof SyntaxError) return new SseBadRequestError(`Malformed ${what}`, { cause: err });
  if (e.status === 400) return new SseBadRequestError(`Malformed ${what}`, { cause: err });
  // zlib (Content-Encoding: gzip/deflate/br) refusing corrupt or truncated data: the client's fault.
  // gzip and deflate say Z_*; brotli says ERR__ERROR_* (a property test found a corrupt br body
  // answered 500 and reported as a server error).
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR__ERROR_')))
    return new SseBadRequestError(`Malformed ${what} (bad content encoding)`, { cause: err });
  return err as Error;
}

/** `application/json` or any `…/…+json`, parameters ignored (a cheaper test than type-is, on every request). */
function isJsonType(header: string): boolean {
  const semi = header.indexOf(';');
  const type = (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json' || (type.endsWith('+json') && type.indexOf('/') > 0);
}
