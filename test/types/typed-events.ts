// Type-level checks of typed events, run by `npm run typecheck` (tsc over test/): every line
// without a marker must compile, and every `@ts-expect-error` line must NOT compile (tsc
// fails on a marker whose line compiles). Nothing here runs.
import type { Context } from 'koa';
import { createHub, ssePlugin, typedHub, type EventMap, type Hub } from '../../lib/index.js';
import type { Events } from '../../example/events.js';

declare const ctx: Context;

export async function typed(): Promise<void> {
  const plugin = ssePlugin<Events>('/sse/hr', { authenticate: () => null });
  const hub: Hub<Events> = plugin.hub;
  await hub.sendByUserId(7, 'bell', { count: 3 });
  await hub.sendByChannel('room:1', 'notify', { channel: 'room:1', text: 'hi', from: 'Ada' }, { listening: true });
  await hub.sendAll('bell', { count: 1 });
  await hub.sendByTenantId([1, 2], 'bell', { count: 2 });
  await hub.sendByAccessToken('t', 'bell', { count: 2 });
  await hub.sendByConnectionId('id', 'ping');
  await hub.sendByConnectionId('id', 'ping', undefined);
  await typedHub<Events>(ctx).sendByUserId(7, 'bell', { count: 3 });
  await createHub<Events>().sendAll('bell', { count: 0 });

  // Durable sends are checked like the others.
  await hub.qos.sendByUserId(7, 'bell', { count: 3 }, { ttlMs: 1000 });
  await hub.qos.sendByChannel('room:1', 'notify', { channel: 'room:1', text: 'hi', from: 'Ada' });
  await hub.qos.sendAll('bell', { count: 1 });
  // @ts-expect-error a durable send with an event name the map does not have
  await hub.qos.sendByUserId(7, 'bel', { count: 3 });
  // @ts-expect-error a durable send with a payload of the wrong shape
  await hub.qos.sendByTenantId(1, 'bell', { count: '3' });
  // @ts-expect-error a durable send missing the payload the event needs
  await hub.qos.sendByAccessToken('t', 'bell');

  // @ts-expect-error an event name the map does not have
  await hub.sendByUserId(7, 'bel', { count: 3 });
  // @ts-expect-error a payload of the wrong shape
  await hub.sendByUserId(7, 'bell', { count: '3' });
  // @ts-expect-error a payload the event needs is missing
  await hub.sendByUserId(7, 'bell');
  // @ts-expect-error another event's payload
  await hub.sendAll('notify', { count: 1 });
  // @ts-expect-error createHub<Events> checks too
  await createHub<Events>().sendAll('bell', { count: 'zero' });
  // @ts-expect-error ctx.sse typed through typedHub checks too
  await typedHub<Events>(ctx).sendByChannel('room:1', 'bell', { text: 'x' });
}

export async function untyped(): Promise<void> {
  // The default takes any name and any payload, with or without one.
  const hub = createHub();
  await hub.sendAll('anything', { at: 1 });
  await hub.sendByUserId(7, 'bell');
  await hub.sendByChannel('x', 'y', 'text', { listening: false });
  await ctx.sse.sendByUserId(7, 'whatever', [1, 2, 3]);
  await hub.qos.sendByChannel('x', 'any', { free: true });
  await hub.qos.sendAll('bare');
  const plain = ssePlugin('/sse/x', { authenticate: () => null });
  await plain.hub.sendAll('z', 1n);
  // A typed hub is still a hub where an untyped one is expected.
  const asPlain: Hub = ssePlugin<Events>('/sse/y', { authenticate: () => null }).hub;
  await asPlain.sendAll('free', 1);
  // @ts-expect-error an event name must be a string
  await hub.sendAll(1, 'x');
}

/** An interface is an event map (it has no index signature). */
interface InterfaceEvents {
  tick: number;
}
export type InterfaceFits = InterfaceEvents extends EventMap ? true : never;
export const interfaceFits: InterfaceFits = true;
