import type { ExecutionContext } from 'ava';

/** An HTTP answer: status, headers, the text, and the JSON body if it parses. */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/** fetch, then read the whole answer. */
export async function request(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/** A coded JSON error with the right status, never a stack trace. */
export function assertError(t: ExecutionContext, reply: Reply, status: number, code: string): void {
  t.is(reply.status, status, reply.text);
  t.is(reply.body?.success, false, reply.text);
  t.is(reply.body?.code, code, reply.text);
  t.false(/\n\s*at |\\n\s*at |node:internal/.test(reply.text), `stack trace in ${reply.text}`);
}
