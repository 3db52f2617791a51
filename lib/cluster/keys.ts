import { hkdfSync } from 'node:crypto';

/** Keys derived from the cluster secret: one for request signatures, one for payload encryption. */
export interface ClusterKeys {
  mac: Buffer;
  enc: Buffer;
}

/** Shortest secret the cluster accepts, in bytes. */
export const MIN_SECRET_BYTES = 32;

/**
 * Derives independent keys with HKDF-SHA256. The group is part of the derivation, so two
 * groups on one LAN (e.g. `hr` and `hunter`) cannot talk to each other even with one secret.
 */
export function deriveKeys(secret: string | Buffer, group: string): ClusterKeys {
  const ikm = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  if (ikm.length < MIN_SECRET_BYTES) {
    throw new TypeError(`cluster.secret must be at least ${MIN_SECRET_BYTES} bytes; generate one with: openssl rand -base64 48`);
  }
  const salt = Buffer.from('koa-sse-server cluster v1');
  const derive = (use: string): Buffer => Buffer.from(hkdfSync('sha256', ikm, salt, `${use}:${group}`, 32));
  return { mac: derive('mac'), enc: derive('enc') };
}
