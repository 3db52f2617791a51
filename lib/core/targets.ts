/** Who a send or a durable message is for. `user` and `token` are queues in durable delivery; the rest a retained log. */
export type TargetKind = 'user' | 'token' | 'tenant' | 'channel' | 'all';

/** A target kind, or connection ids: what `send*`, `disconnect*` and `setDuration*` address. */
export type SendTargetKind = TargetKind | 'connection';

/** One target: `key` is the user id, token, tenant id or channel (`''` for all). */
export interface TargetRef {
  kind: TargetKind;
  key: string;
}
