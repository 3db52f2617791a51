import type { Context } from 'koa';

/** What a hook that may answer the request itself did. */
export interface HookOutcome<T> {
  result: T;
  /** The hook set the answer: it changed the status or the body. */
  answered: boolean;
}

/**
 * Runs an app hook that may write the answer itself (`ctx.status`, `ctx.body`). Whether it
 * did is seen by comparing before and after, not by Koa's default 404: a middleware mounted
 * before the plugin may have set either already.
 */
export async function runAnsweringHook<T>(ctx: Context, hook: () => T | Promise<T>): Promise<HookOutcome<T>> {
  const status = ctx.status;
  const body: unknown = ctx.body;
  const result = await hook();
  return { result, answered: ctx.status !== status || ctx.body !== body };
}
