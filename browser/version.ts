/** Replaced at build time by esbuild (`define`) with the version in package.json. */
declare const __SSE_CLIENT_VERSION__: string;

/** Version of this client, sent as `clientVersion` when connecting. */
export const VERSION: string = typeof __SSE_CLIENT_VERSION__ === 'string' ? __SSE_CLIENT_VERSION__ : '0.0.0-dev';
