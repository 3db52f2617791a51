import { SseClientError, SseRequestError } from './errors.js';

/** How one POST is made. */
export interface PostOptions {
  credentials: RequestCredentials;
  headers?: Record<string, string> | undefined;
  /** Aborts the request; its `reason` becomes the rejection. */
  signal?: AbortSignal | undefined;
  /** Longest wait for the whole answer, in ms; 0 for none. */
  timeout: number;
  /** Let the request outlive the page (acks sent while it unloads). */
  keepalive?: boolean;
}

/** An answer of the server: the fetch `Response` (body unread) and its body, parsed. */
export interface HttpAnswer {
  response: Response;
  /** JSON if the answer was JSON, else its text; null when empty. */
  body: unknown;
}

/**
 * POSTs `body` (a JSON string or a FormData), or GETs when there is none, and resolves once the whole answer arrived,
 * whatever its status. The body is read from a clone, so the `Response` handed to the page
 * is still unread (`r.json()` works). Rejects with `ERR_SSE_NETWORK` when the request did
 * not reach the server, `ERR_SSE_REQUEST_TIMEOUT` or `ERR_SSE_RESPONSE` when it may have
 * been processed but no answer arrived, or the signal's reason when aborted.
 */
export async function request(url: string, body: string | FormData | undefined, options: PostOptions): Promise<HttpAnswer> {
  const abort = new AbortController();
  const outer = options.signal;
  if (outer?.aborted) throw outer.reason;
  const onAbort = (): void => abort.abort(outer?.reason);
  outer?.addEventListener('abort', onAbort);
  let timedOut = false;
  const timer = options.timeout > 0 ? setTimeout(() => ((timedOut = true), abort.abort()), options.timeout) : undefined;
  const failure = (err: unknown, code: string, message: string): unknown => {
    if (timedOut) return new SseClientError('ERR_SSE_REQUEST_TIMEOUT', `No answer in ${options.timeout} ms; it may have been processed`);
    if (outer?.aborted) return outer.reason;
    return new SseClientError(code, message, { cause: err });
  };
  try {
    let response: Response;
    const headers: Record<string, string> = { ...options.headers };
    if (typeof body === 'string') headers['content-type'] = 'application/json;charset=UTF-8';
    try {
      response = await fetch(url, {
        method: body === undefined ? 'GET' : 'POST',
        body,
        headers,
        credentials: options.credentials,
        cache: 'no-store',
        signal: abort.signal,
        keepalive: options.keepalive === true,
      });
    } catch (err) {
      throw failure(err, 'ERR_SSE_NETWORK', 'Request failed');
    }
    let text: string;
    try {
      text = await response.clone().text();
    } catch (err) {
      throw failure(err, 'ERR_SSE_RESPONSE', 'Answer lost; it may have been processed');
    }
    return { response, body: parseBody(text, response.headers.get('content-type')) };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }
}

/** The parsed body of a success; an error status throws {@link SseRequestError}. */
export function answerBody(answer: HttpAnswer): unknown {
  if (!answer.response.ok) throw new SseRequestError(answer.response.status, answer.body);
  return answer.body;
}

/** The server does not know the connection any more: resend after reconnecting. */
export function isUnknownConnection(answer: HttpAnswer): boolean {
  return answer.response.status === 404 && (answer.body as { code?: unknown } | null)?.code === 'ERR_SSE_UNKNOWN_CONNECTION';
}

/** An answer's body: parsed when its content type says JSON and it parses, else the text (null when empty). */
export function parseBody(text: string, type: string | null): unknown {
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
