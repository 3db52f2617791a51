// (b) The practical limit: a bare node:http SSE server. The same headers and frames as the
// library; one pre-encoded Buffer per event written to every response; a Set for broadcasts
// and a Map for targeted sends (a lookup + a write).
import { createServer } from 'node:http';
import { runServer, streamUser } from './harness.js';
import { openRawStream, rawAdapter } from './raw-streams.js';

const server = createServer((req, res) => {
  const user = streamUser(req, res);
  if (user === undefined) return;
  openRawStream(req, res, user);
});

await runServer(server, rawAdapter);
