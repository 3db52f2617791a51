// README.md's quick start runs as written: its first ```ts block is copied into a folder under
// .tmp/ (inside the repository, so that koa and @koa/router resolve from node_modules), with
// the `koa-sse-server` import pointed at lib/index.ts, and run with tsx on a random loopback
// port (the block reads PORT). A stream opened as the page does receives what the app's push
// route sends, and the page the block serves loads the client from the plugin.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import MarkdownIt from 'markdown-it';
import { freePort } from './helpers/redis-server.js';
import { request, type Reply } from './helpers/reply.js';
import { RawStream } from './helpers/stream.js';

const ROOT = path.resolve(import.meta.dirname, '..');

/** The first ```ts block of README.md's "Quick start" section. */
function quickStart(): string {
  const tokens = new MarkdownIt().parse(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), {});
  const heading = tokens.findIndex((tok, i) => tok.type === 'heading_open' && tok.tag === 'h2' && tokens[i + 1]?.content === 'Quick start');
  if (heading === -1) throw new Error('README.md has no "## Quick start" heading');
  for (const tok of tokens.slice(heading + 1)) {
    if (tok.type === 'heading_open' && tok.tag <= 'h2') break;
    if (tok.type === 'fence' && tok.info.trim() === 'ts') return tok.content;
  }
  throw new Error('README.md\'s "Quick start" has no ```ts block');
}

test('the README quick start runs as written: a page stream gets what the push route sends', async (t) => {
  const code = quickStart();
  t.regex(code, /from 'koa-sse-server'/, 'the quick start imports the package by name');
  t.regex(code, /router\.use\(sse\.router\.routes\(\)\)/, 'the quick start mounts the endpoints in @koa/router');
  t.regex(code, /process\.env\.PORT/, 'the quick start reads PORT, so that the test can give it a free one');
  const lib = pathToFileURL(path.join(ROOT, 'lib', 'index.ts')).href;
  const dir = path.join(ROOT, '.tmp', `readme-quickstart-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'server.ts');
  writeFileSync(file, code.replaceAll("from 'koa-sse-server'", `from '${lib}'`));

  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['--import=tsx', file], {
    cwd: dir,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let exited = false;
  const exit = once(child, 'exit').then(() => (exited = true));
  t.teardown(async () => {
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
  });

  // Up once it answers its own page; it prints nothing, so ask until it does (bounded).
  let page: Reply | undefined;
  for (const deadline = Date.now() + 30_000; !page;) {
    if (exited) return t.fail(`the quick start exited before listening:\n${stderr}`);
    if (Date.now() > deadline) return t.fail(`the quick start did not answer on ${origin} within 30 s:\n${stderr}`);
    page = await request(`${origin}/`).catch(() => undefined);
    if (!page) await delay(100);
  }
  t.is(page.status, 200);
  t.regex(page.text, /import\('\/sse\/hr\/sse\.js'\)/);

  // The client the page imports is served by the plugin through the app's router.
  const script = await fetch(`${origin}/sse/hr/sse.js`);
  t.is(script.status, 200, 'the browser client is built (npm run build) and served at /sse/hr/sse.js');
  t.regex(script.headers.get('content-type') ?? '', /javascript/);
  t.regex(await script.text(), /sseEventListener/);

  // A user the quick start's login does not know gets 401; user 7 gets a stream.
  const anonymous = await request(`${origin}/sse/hr/connect`);
  t.is(anonymous.status, 401);
  const stream = await RawStream.open(t, `${origin}/sse/hr/connect?user=7`);
  t.is(stream.status, 200);

  const push = await request(`${origin}/api/bell/7`, { method: 'POST' });
  t.is(push.status, 200, push.text);
  t.deepEqual(push.body, { delivered: 1 });
  t.deepEqual(JSON.parse((await stream.next('bell', 10_000)).data), { text: 'ding' });

  const nobody = await request(`${origin}/api/bell/8`, { method: 'POST' });
  t.deepEqual(nobody.body, { delivered: 0 });
});

test("the README quick start type-checks under the repository's strict settings", async (t) => {
  const dir = path.join(ROOT, '.tmp', `readme-quickstart-types-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = path
    .relative(dir, path.join(ROOT, 'lib', 'index.js'))
    .split(path.sep)
    .join('/');
  writeFileSync(path.join(dir, 'server.ts'), quickStart().replaceAll("from 'koa-sse-server'", `from '${lib}'`));
  const config = { extends: path.join(ROOT, 'tsconfig.json'), compilerOptions: { noEmit: true, rootDir: ROOT }, include: ['server.ts'] };
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config));
  const tsc = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  tsc.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  tsc.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(tsc, 'exit')) as [number | null];
  t.is(code, 0, output);
});
