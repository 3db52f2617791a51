// Type-level check of SseEventRegistry, run by `npm run typecheck`: every line without a
// marker must compile, every `@ts-expect-error` line must NOT. Nothing here runs.
import type { Context } from 'koa';
import type { Events } from '../../../example/events.js';
import '../../../lib/index.js';

declare module '../../../lib/index.js' {
  interface SseEventRegistry {
    events: Events;
  }
}

declare const ctx: Context;

export async function registered(): Promise<void> {
  await ctx.sse.sendByUserId(7, 'bell', { count: 3 });
  await ctx.sse.sendAll('bell', { count: 1 });
  // @ts-expect-error an event name the registered map does not have
  await ctx.sse.sendByUserId(7, 'bel', { count: 3 });
  // @ts-expect-error a payload of the wrong shape
  await ctx.sse.sendByUserId(7, 'bell', { count: '3' });
  // @ts-expect-error the payload the event needs is missing
  await ctx.sse.sendAll('bell');
}
