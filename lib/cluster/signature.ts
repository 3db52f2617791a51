import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Headers of a signed cluster request. */
export const H_NODE = 'x-sse-node';
export const H_TO = 'x-sse-to';
export const H_TIME = 'x-sse-time';
export const H_NONCE = 'x-sse-nonce';
export const H_DIGEST = 'x-sse-digest';
export const H_SIG = 'x-sse-signature';

/** Largest clock difference (and nonce memory) accepted, in ms. */
export const MAX_SKEW_MS = 30_000;

export interface SignedHeaders {
  [H_NODE]: string;
  [H_TO]: string;
  [H_TIME]: string;
  [H_NONCE]: string;
  [H_DIGEST]: string;
  [H_SIG]: string;
}

function digest(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

function mac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

/**
 * What a request signature covers: method, path, time, nonce, sender, recipient, and the
 * body's length and hash. The recipient binds a request to the one node it was meant for:
 * captured on its way to B, it is refused by C, and by its own sender. Length and hash are in
 * headers, so the receiver checks the signature before it reads a single byte of the body.
 */
function canonical(method: string, path: string, time: string, nonce: string, from: string, to: string, length: number, bodyDigest: string): string {
  return `${method}\n${path}\n${time}\n${nonce}\n${from}\n${to}\n${length}\n${bodyDigest}`;
}

/**
 * Signs a request from `from` to `to`. `to` is the recipient's node id; empty only for
 * `hello`, sent to an address whose node is not known yet (a `hello` changes nothing).
 */
export function signRequest(
  key: Buffer,
  method: string,
  path: string,
  from: string,
  to: string,
  body: Buffer,
  now = Date.now(),
  nonce = randomBytes(16).toString('hex'),
): SignedHeaders {
  const time = String(now);
  const bodyDigest = digest(body);
  const sig = mac(key, canonical(method, path, time, nonce, from, to, body.length, bodyDigest)).toString('hex');
  return { [H_NODE]: from, [H_TO]: to, [H_TIME]: time, [H_NONCE]: nonce, [H_DIGEST]: bodyDigest, [H_SIG]: sig };
}

/**
 * Remembers nonces seen within the skew window so a captured request cannot be replayed.
 * Bounded: entries older than the window are dropped, and past `max` entries new requests
 * are refused rather than memory growing (a flood is an attack, not traffic).
 */
export class NonceCache {
  readonly #seen = new Map<string, number>();
  readonly #max: number;

  constructor(max = 200_000) {
    this.#max = max;
  }

  /** Records the nonce; false if it was seen already or the cache is full. */
  add(nonce: string, now: number): boolean {
    if (this.#seen.has(nonce)) return false;
    if (this.#seen.size >= this.#max) this.#prune(now);
    if (this.#seen.size >= this.#max) return false;
    this.#seen.set(nonce, now);
    if (this.#seen.size % 1024 === 0) this.#prune(now);
    return true;
  }

  #prune(now: number): void {
    // Insertion order is time order: stop at the first entry still inside the window.
    for (const [nonce, at] of this.#seen) {
      if (now - at <= 2 * MAX_SKEW_MS) break;
      this.#seen.delete(nonce);
    }
  }
}

export type Verdict = { ok: true; nodeId: string; nonce: string; to: string; length: number; digest: string } | { ok: false; reason: string };

/**
 * Checks a request's headers before its body is read: signature (over the declared length
 * and body hash), recipient (`self`, or empty for a hello), age and nonce. Constant time
 * where it matters. The body must then match with {@link bodyMatches}.
 */
export function verifyRequest(
  key: Buffer,
  method: string,
  path: string,
  headers: Record<string, string | string[] | undefined>,
  self: string,
  nonces: NonceCache,
  now = Date.now(),
): Verdict {
  const one = (name: string): string | undefined => {
    const v = headers[name];
    return typeof v === 'string' ? v : undefined;
  };
  const nodeId = one(H_NODE);
  const to = one(H_TO);
  const time = one(H_TIME);
  const nonce = one(H_NONCE);
  const bodyDigest = one(H_DIGEST);
  const sig = one(H_SIG);
  const length = Number(one('content-length'));
  if (!nodeId || to === undefined || !time || !nonce || !bodyDigest || !sig) return { ok: false, reason: 'unsigned' };
  if (
    !/^[0-9a-f]{32}$/.test(nonce) ||
    !/^[0-9a-f]{64}$/.test(sig) ||
    !/^[0-9a-f]{64}$/.test(bodyDigest) ||
    !/^\d{1,16}$/.test(time) ||
    nodeId.length > 64 ||
    to.length > 64 ||
    !Number.isSafeInteger(length)
  ) {
    return { ok: false, reason: 'malformed signature' };
  }
  if (to !== self && to !== '') return { ok: false, reason: 'not for this node' };
  if (Math.abs(now - Number(time)) > MAX_SKEW_MS) return { ok: false, reason: 'stale' };
  const expected = mac(key, canonical(method, path, time, nonce, nodeId, to, length, bodyDigest));
  if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) return { ok: false, reason: 'bad signature' };
  // Only a valid signature may spend a nonce: otherwise anyone could burn nonces.
  if (!nonces.add(nonce, now)) return { ok: false, reason: 'replayed' };
  return { ok: true, nodeId, nonce, to, length, digest: bodyDigest };
}

/** Whether a body read after {@link verifyRequest} is the one that was signed. */
export function bodyMatches(verdict: { length: number; digest: string }, body: Buffer): boolean {
  return body.length === verdict.length && timingSafeEqual(Buffer.from(digest(body), 'hex'), Buffer.from(verdict.digest, 'hex'));
}

/** Signs a response, bound to the request's nonce: a rogue server cannot forge an answer. */
export function signResponse(key: Buffer, requestNonce: string, nodeId: string, body: Buffer): string {
  return mac(key, `response\n${requestNonce}\n${nodeId}\n${digest(body)}`).toString('hex');
}

export function verifyResponse(key: Buffer, requestNonce: string, nodeId: string, body: Buffer, sig: string | undefined): boolean {
  if (typeof sig !== 'string' || !/^[0-9a-f]{64}$/.test(sig)) return false;
  return timingSafeEqual(mac(key, `response\n${requestNonce}\n${nodeId}\n${digest(body)}`), Buffer.from(sig, 'hex'));
}
