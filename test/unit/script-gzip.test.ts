// The served client's gzip form: the build's (zopfli) file when it unpacks to exactly the
// client the plugin serves, else none (the plugin then compresses the client itself), so a
// `.gz` left over from another build never goes out with a new `sse.js`.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { prebuiltGzip } from '../../lib/http/script.js';

test("the build's gzip file is used only when it unpacks to the client being served", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sse-script-gzip-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const body = Buffer.from('export default class Sse {}\n'.repeat(50));
  const file = pathToFileURL(join(dir, 'sse.js.gz'));

  t.is(await prebuiltGzip(file, body), undefined, 'no file');
  const gz = gzipSync(body, { level: 1 });
  writeFileSync(file, gz);
  t.deepEqual(await prebuiltGzip(file, body), gz, 'the matching file as it is');
  t.is(await prebuiltGzip(file, Buffer.concat([body, Buffer.from('// next build\n')])), undefined, 'another build');
  writeFileSync(file, 'not gzip');
  t.is(await prebuiltGzip(file, body), undefined, 'a damaged file');
});
