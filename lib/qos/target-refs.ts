import type { SendTargetKind, TargetRef } from '../core/targets.js';

/** What identifies a connection for durable delivery. */
export interface Recipient {
  userId?: string | undefined;
  accessToken?: string | undefined;
  tenantId?: string | undefined;
  channel?: string | undefined;
  /** Channels joined at runtime: their logs resume like the fixed channel's. */
  channels?: readonly string[] | undefined;
}

/** The queues a connection answers for (and may acknowledge): its user id and its access token. */
export function queueRefsOf(who: Recipient): TargetRef[] {
  const refs: TargetRef[] = [];
  if (who.userId !== undefined) refs.push({ kind: 'user', key: who.userId });
  if (who.accessToken !== undefined) refs.push({ kind: 'token', key: who.accessToken });
  return refs;
}

/** The retained logs a connection reads after its resume point: all, its tenant, its channels (fixed and runtime). */
export function logRefsOf(who: Recipient): TargetRef[] {
  const refs: TargetRef[] = [{ kind: 'all', key: '' }];
  if (who.tenantId !== undefined) refs.push({ kind: 'tenant', key: who.tenantId });
  if (who.channel !== undefined) refs.push({ kind: 'channel', key: who.channel });
  for (const channel of who.channels ?? []) if (channel !== who.channel) refs.push({ kind: 'channel', key: channel });
  return refs;
}

/** The one queue of `who` that a message sent to targets of `kind` was for, if it is a queue. */
export function queueRefFor(who: Recipient, kind: SendTargetKind): TargetRef | undefined {
  if (kind === 'user' && who.userId !== undefined) return { kind, key: who.userId };
  if (kind === 'token' && who.accessToken !== undefined) return { kind, key: who.accessToken };
  return undefined;
}
