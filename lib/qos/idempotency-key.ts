// The check of a durable send's `idempotencyKey`, shared by the nodes (StoreOwner) and the
// Redis emitter, which inserts into the same store and must refuse the same keys.

/** Most characters of an idempotency key. */
const MAX_IDEMPOTENCY_KEY = 200;

/**
 * `idempotencyKey`: 1-200 characters, or absent.
 *
 * @throws TypeError for anything else.
 */
export function idempotencyKeyOf(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '' || value.length > MAX_IDEMPOTENCY_KEY) {
    throw new TypeError(`idempotencyKey must be a string of 1-${MAX_IDEMPOTENCY_KEY} characters`);
  }
  return value;
}
