import { SseClientError, SseRequestError } from './errors.js';

/** How one POST is made. */
export interface PostOptions {
  credentials: RequestCredentials;
  headers?: Record<string, string> | undefined;
  /** Aborts the request; its `reason` becomes the rejection. */
  signal?: AbortSignal | undefined;
  /** Longest wait for the answer, in ms; 0 for none. */
  timeout: number;
  /** Let the request outlive the page (acks sent while it unloads). */
  keepalive?: boolean;
}

/**
 * POSTs `body` (a JSON string or a FormData) and resolves to the parsed answer (JSON, else
 * text). Rejects with {@link SseRequestError} on an error status, `ERR_SSE_NETWORK` when the
 * request did not reach the server, `ERR_SSE_REQUEST_TIMEOUT` or `ERR_SSE_RESPONSE` when it
 * may have been processed but no answer arrived, or the signal's reason when aborted.
 */
export async function post(url: string, body: string | FormData, options: PostOptions): Promise<unknown> {
  const abort = new AbortController();
  const outer = options.signal;
  if (outer?.aborted) throw outer.reason;
  const onAbort = (): void => abort.abort(outer?.reason);
  outer?.addEventListener('abort', onAbort);
  let timedOut = false;
  const timer = options.timeout > 0 ? setTimeout(() => ((timedOut = true), abort.abort()), options.timeout) : undefined;
  const failure = (err: unknown, code: string, message: string): unknown => {
    if (timedOut) return new SseClientError('ERR_SSE_REQUEST_TIMEOUT', `No answer within ${options.timeout} ms; the request may have been processed`);
    if (outer?.aborted) return outer.reason;
    return new SseClientError(code, message, { cause: err });
  };
  try {
    let res: Response;
    const headers: Record<string, string> = { ...options.headers };
    if (typeof body === 'string') headers['content-type'] = 'application/json;charset=UTF-8';
    try {
      res = await fetch(url, {
        method: 'POST',
        body,
        headers,
        credentials: options.credentials,
        cache: 'no-store',
        signal: abort.signal,
        keepalive: options.keepalive === true,
      });
    } catch (err) {
      throw failure(err, 'ERR_SSE_NETWORK', 'The request did not reach the server');
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw failure(err, 'ERR_SSE_RESPONSE', 'The answer was lost; the request may have been processed');
    }
    const parsed = parseBody(text, res.headers.get('content-type'));
    if (!res.ok) throw new SseRequestError(res.status, parsed);
    return parsed;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }
}

function parseBody(text: string, type: string | null): unknown {
  if (text === '') return null;
  if (type !== null && /json/i.test(type)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // fall through: give the text
    }
  }
  return text;
}

/** `base + path + ?query` with the query's empty values left out. */
export function urlWith(base: string, path: string, query: Record<string, string>): string {
  const params = new URLSearchParams(query).toString();
  return `${base}${path}${params ? `?${params}` : ''}`;
}
