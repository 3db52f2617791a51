import { createHash } from 'node:crypto';

/** First 12 hex digits of SHA-256: correlates tokens in admin views without revealing them. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}
