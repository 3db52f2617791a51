/**
 * The shapes of the admin endpoints' answers: the server's own types (lib/core/admin-api.ts is
 * free of runtime dependencies), so the page and the endpoints cannot drift apart.
 */
export type { AdminStats as Stats, ConnectionView, Page, RedactedUser as UserView, StoredMessageView } from '../lib/core/admin-api.js';
