// The committed API reference (docs/api/, TypeDoc's Markdown from the TSDoc of lib/index.ts's
// exports) is current: regenerated into a folder under .tmp/ with the same typedoc.json, it
// must equal what is committed, file for file. A change to the public API or its TSDoc
// without `npm run docs:api` fails here. Sources are not linked (typedoc.json
// `disableSources`), so moving code inside a file does not make the reference stale.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';

const ROOT = path.resolve(import.meta.dirname, '..');
const COMMITTED = path.join(ROOT, 'docs', 'api');

/** Every file under `dir`, relative, with its text. */
function tree(dir: string): Map<string, string> {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
  return new Map(
    files.map((entry) => [
      path.relative(dir, path.join(entry.parentPath, entry.name)),
      readFileSync(path.join(entry.parentPath, entry.name), 'utf8'),
    ]),
  );
}

test('docs/api is what `npm run docs:api` generates now', async (t) => {
  const out = path.join(ROOT, '.tmp', `docs-api-${process.pid}-${Date.now()}`);
  mkdirSync(out, { recursive: true });
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const typedoc = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out, '--logLevel', 'Error'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  typedoc.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  typedoc.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(typedoc, 'exit')) as [number | null];
  t.is(code, 0, output);

  const fresh = tree(out);
  const committed = tree(COMMITTED);
  t.true(fresh.has('README.md') && fresh.size > 50, `typedoc wrote ${fresh.size} files`);
  const stale = [...new Set([...fresh.keys(), ...committed.keys()])]
    .filter((file) => fresh.get(file) !== committed.get(file))
    .map((file) => `${file}: ${!committed.has(file) ? 'missing from docs/api' : !fresh.has(file) ? 'no longer generated' : 'differs'}`)
    .sort();
  t.deepEqual(stale, [], 'docs/api is stale: run `npm run docs:api` and commit the result');
});
