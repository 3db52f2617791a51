// Type-level check of the client's typed events, run by `npm run typecheck` (test/browser/tsconfig.json):
// what must compile does, and each `@ts-expect-error` line must fail to compile.
import { sseEventListener, type SseConnection, type SseMessage } from '../../browser/index.js';

interface Events {
  bell: { count: number };
  chat: { from: string; text: string };
}

export async function typed(): Promise<void> {
  const conn = await sseEventListener<Events>('/sse/hr', {
    bell: (e) => {
      const count: number = e.payload.count;
      const text: string = e.data; // the frame's text is still there
      void count;
      void text;
    },
    chat: [(e) => e.payload.text.toUpperCase()],
  });
  const typedConn: SseConnection<Events> = conn;
  await typedConn.addListener('chat', (e) => e.payload.from.trim());
  await typedConn.listen('bell', (e: SseMessage<{ count: number }>) => e.payload.count + 1);

  // @ts-expect-error a name outside the map
  await sseEventListener<Events>('/sse/hr', { ring: () => undefined });
  await sseEventListener<Events>('/sse/hr', {
    // @ts-expect-error the payload of bell has no text
    bell: (e) => e.payload.text,
  });
}

export async function untyped(): Promise<void> {
  // Default: any name, the payload unknown, the Java-style listener as before.
  const conn = await sseEventListener('/sse/hr', { anything: (e) => JSON.parse(e.data) as unknown, other: null });
  await sseEventListener('/sse/hr', ['a', 'b']);
  await conn.addListener('x', (e) => e.data.length);
  // @ts-expect-error an unknown payload must be narrowed before use
  await conn.addListener('y', (e) => (e as SseMessage).payload.count);
}
