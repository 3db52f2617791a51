import { createRequire } from 'node:module';
import { SseMissingEngineError } from './errors.js';

// The engines are CommonJS packages: required synchronously, so that the hub, whose
// constructor builds its store and transport, stays synchronous and loads an engine only
// when an option asks for it.
const require = createRequire(import.meta.url);

/**
 * Loads an optional engine (better-sqlite3, ioredis, multicast-dns) the first time an option
 * needs it. An app that uses none of them installs none (they are optional peer dependencies);
 * one that asks for a missing one gets `ERR_SSE_MISSING_ENGINE` naming the package and the option.
 */
export function loadEngine<T>(packageName: 'better-sqlite3' | 'ioredis' | 'multicast-dns', neededBy: string): T {
  try {
    return require(packageName) as T;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const missing = code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes(`'${packageName}'`);
    if (missing) throw new SseMissingEngineError(packageName, neededBy, { cause: err });
    throw err;
  }
}
