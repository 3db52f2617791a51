// Type-level checks of what `authenticate` may return (run by `npm run typecheck`).
import { ssePlugin, type SseUser } from '../../lib/index.js';

export const ok: SseUser[] = [
  { id: 7 },
  { id: '7', tenantId: 1, accessToken: 't', name: 'Ada' },
  { id: null, accessToken: 't' },
  { id: 7, team: 'hr' },
];

// @ts-expect-error the user id goes in `id`: `userId` would leave the stream anonymous
export const misnamed: SseUser = { userId: 7 };

export const plugin = ssePlugin('/sse/x', {
  // @ts-expect-error the same mistake in authenticate's result
  authenticate: () => ({ userId: 7 }),
});
