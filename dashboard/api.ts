/**
 * Requests to the admin endpoints under `{base}/connect/`. They carry the query string the page
 * was loaded with (the app's login may be a token in it, as in the example's `?access-token=`)
 * and the page's cookies, so the dashboard authenticates like every other client of the app.
 */

/** An answer other than 2xx: `status` is the HTTP status, the message the server's. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Query parameters of the page that are the dashboard's own and not forwarded. */
const OWN_PARAMS = ['interval'];

const pageQuery = new URLSearchParams(location.search);
for (const name of OWN_PARAMS) pageQuery.delete(name);

/** `{base}`: the page is served at `{base}/dashboard`. */
export const base = location.pathname.replace(/\/dashboard\/?$/, '');

export type Params = Record<string, string | number | undefined>;

/** `{base}/connect/{path}` with the page's query string plus `params`. */
export function apiUrl(path: string, params: Params = {}): string {
  const query = new URLSearchParams(pageQuery);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === '') query.delete(key);
    else query.set(key, String(value));
  }
  const search = query.toString();
  return `${base}/connect/${path}${search === '' ? '' : `?${search}`}`;
}

export function getJson<T>(path: string, params?: Params): Promise<T> {
  return request<T>(apiUrl(path, params), { method: 'GET' });
}

export function postJson<T>(path: string, body: unknown): Promise<T> {
  return request<T>(apiUrl(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function request<T>(url: string, init: RequestInit): Promise<T> {
  const res = await fetch(url, {
    ...init,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { accept: 'application/json', ...init.headers },
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const message = (body as { message?: unknown } | undefined)?.message;
    throw new ApiError(res.status, typeof message === 'string' && message !== '' ? message : `${res.status} ${res.statusText}`);
  }
  return unwrap(body) as T;
}

/** The result inside the default envelope `{success, code, data}`; an app's own `wrapOkResponse` may send it bare. */
function unwrap(body: unknown): unknown {
  if (body !== null && typeof body === 'object' && 'success' in body && 'data' in body) return body.data;
  return body;
}
