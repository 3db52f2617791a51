import { createRequire } from 'node:module';
import { SseMissingEngineError } from './errors.js';

// The engines are CommonJS packages: required synchronously, so that the hub, whose
// constructor builds its store and transport, stays synchronous and loads an engine only
// when an option asks for it.
const require = createRequire(import.meta.url);
const loaded = new Map<string, unknown>();

/**
 * Loads an optional engine (better-sqlite3, ioredis, multicast-dns) the first time an option
 * needs it. An app that uses none of them installs none (they are optional peer dependencies);
 * one that asks for a missing one gets `ERR_SSE_MISSING_ENGINE` naming the package and the option.
 */
export function loadEngine<T>(packageName: 'better-sqlite3' | 'ioredis' | 'multicast-dns', neededBy: string): T {
  // Kept once loaded: `require` resolves the name again on every call (~10 µs, more under a
  // loader hook), and some callers ask per command (the Redis engine's send path).
  const known = loaded.get(packageName);
  if (known !== undefined) return known as T;
  try {
    const engine = require(packageName) as T;
    loaded.set(packageName, engine);
    return engine;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const missing = code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes(`'${packageName}'`);
    if (missing) throw new SseMissingEngineError(packageName, neededBy, { cause: err });
    throw err;
  }
}
