import type { EventMap, EventName, SendArgs } from '../core/event-map.js';
import type { Key } from '../core/user.js';
import type { Qos, QosSendOptions, QosSendResult } from './qos.js';

/** The durable sends of `hub.qos`, checked against an event map (also an emitter's `qos`). */
export interface TypedQosSends<Events extends EventMap> {
  sendAll<K extends EventName<Events>>(event: K, ...args: SendArgs<Events[K], QosSendOptions>): Promise<QosSendResult>;
  sendByUserId<K extends EventName<Events>>(
    userIds: Key | readonly Key[],
    event: K,
    ...args: SendArgs<Events[K], QosSendOptions>
  ): Promise<QosSendResult>;
  sendByAccessToken<K extends EventName<Events>>(
    tokens: string | readonly string[],
    event: K,
    ...args: SendArgs<Events[K], QosSendOptions>
  ): Promise<QosSendResult>;
  sendByTenantId<K extends EventName<Events>>(
    tenantIds: Key | readonly Key[],
    event: K,
    ...args: SendArgs<Events[K], QosSendOptions>
  ): Promise<QosSendResult>;
  sendByChannel<K extends EventName<Events>>(
    channels: string | readonly string[],
    event: K,
    ...args: SendArgs<Events[K], QosSendOptions>
  ): Promise<QosSendResult>;
}

/**
 * `hub.qos` as a hub typed by an event map sees it: the durable sends are checked against the
 * map like the hub's own (`hub.qos.sendByUserId(7, 'bell', { count: 3 })`), the rest is
 * {@link Qos} unchanged. With the untyped default map any name and payload are accepted.
 */
export type TypedQos<Events extends EventMap> = Omit<Qos, 'sendAll' | 'sendByUserId' | 'sendByAccessToken' | 'sendByTenantId' | 'sendByChannel'> &
  TypedQosSends<Events>;
