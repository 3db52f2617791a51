/**
 * The published package as a TypeScript user gets it: `npm pack` on a clean copy of the repo
 * (what git would commit: no dist/, so the pack has to build it), then a strict consumer
 * project (`skipLibCheck: false`, NodeNext, no prom-client) installs the tarball, type-checks
 * a small app against the shipped types and runs it.
 */
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; exports: Record<string, unknown> };
const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };

/** The version this repo's lockfile pins, so the consumer installs what is in the npm cache. */
function locked(name: string): string {
  const version = lock.packages[`node_modules/${name}`]?.version;
  if (version === undefined) throw new Error(`${name} is not in package-lock.json`);
  return `${name}@${version}`;
}

// Child npm runs must not inherit the settings of an npm that may have started this test.
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_(package|lifecycle)_/i.test(k) && k !== 'npm_command'),
);

/** Runs a command; on failure the error carries its output, so the test log shows why. */
function run(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

let work = '';
let tarball = '';
/** The tarball's files, relative to its `package/` folder. */
let files: string[] = [];

test.before('npm pack a clean copy of the repo', async (t) => {
  // Generous: the build and installs take 10-40 s depending on how busy the machine is.
  t.timeout(120_000);
  const started = Date.now();
  work = await mkdtemp(join(tmpdir(), 'sse-package-'));
  const clone = join(work, 'clone');
  // A clean clone: the files git tracks or would add, none it ignores (dist/, data/, …).
  const listed = (await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT)).split('\0').filter(Boolean);
  for (const file of listed) {
    if (existsSync(join(ROOT, file))) await cp(join(ROOT, file), join(clone, file), { recursive: true });
  }
  // The dev dependencies the build needs, as `npm ci` would have installed them.
  await symlink(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
  const out = join(work, 'out');
  await mkdir(out);
  // A real `npm pack`, lifecycle scripts included.
  await run('npm', ['pack', '--pack-destination', out], clone);
  t.log(`copy + npm pack: ${Date.now() - started} ms`);
  const [name] = (await readdir(out)).filter((f) => f.endsWith('.tgz'));
  if (name === undefined) throw new Error('npm pack made no tarball');
  tarball = join(out, name);
  const extracted = join(work, 'extracted');
  await mkdir(extracted);
  await run('tar', ['-xzf', tarball, '-C', extracted], work);
  files = (await run('tar', ['-tzf', tarball], work))
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
});

test.after.always('remove the temp folder', async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

test('the tarball ships what runs and what its maps point to, nothing test-only', async (t) => {
  const shipped = new Set(files);
  for (const needed of [
    'package.json',
    'README.md',
    'dist/lib/index.js',
    'dist/lib/index.d.ts',
    // Looked up at run time next to dist/lib (lib/http/script.ts, lib/http/dashboard.ts).
    'dist/browser/sse.js',
    'dist/browser/sse.classic.js',
    'dist/browser/types/index.d.ts',
    'dist/dashboard/dashboard.html',
  ]) {
    t.true(shipped.has(needed), `${needed} is not in the tarball`);
  }
  // Every target of the exports map.
  const targets = (value: unknown): string[] =>
    typeof value === 'string' ? [value] : value !== null && typeof value === 'object' ? Object.values(value).flatMap(targets) : [];
  for (const target of targets(pkg.exports)) {
    const file = posix.normalize(target);
    t.true(shipped.has(file), `exports target ${file} is not in the tarball`);
  }
  const unexpected = files.filter(
    (f) => !/^(package\.json|README\.md|LICENSE)$|^dist\/(lib|browser|dashboard)\/|^lib\//.test(f) || /\.test\.|(^|\/)(test|fixtures)\//.test(f),
  );
  t.deepEqual(unexpected, [], 'files outside the allowed set');

  // A map must resolve: each source either ships or is inlined.
  const maps = files.filter((f) => f.endsWith('.map'));
  t.true(maps.length > 0, 'no source maps at all');
  const missing: string[] = [];
  for (const map of maps) {
    const json = JSON.parse(await readFile(join(work, 'extracted', 'package', map), 'utf8')) as {
      sources: string[];
      sourceRoot?: string;
      sourcesContent?: (string | null)[];
    };
    json.sources.forEach((source, i) => {
      if (typeof json.sourcesContent?.[i] === 'string') return;
      const file = posix.normalize(posix.join(posix.dirname(map), json.sourceRoot ?? '', source));
      if (!shipped.has(file)) missing.push(`${map} → ${file}`);
    });
  }
  t.deepEqual(missing, [], 'source maps point to files that are not shipped');
});

const APP = `import Koa from 'koa';
import { ssePlugin, type SseUser } from 'koa-sse-server';

const app = new Koa();
const hr = ssePlugin('/sse/hr', {
  authenticate: (ctx): SseUser | null => {
    const token = ctx.query['access-token'];
    return typeof token === 'string' && token !== '' ? { id: token, accessToken: token } : null;
  },
});
app.use(hr);
app.use(async (ctx) => {
  if (ctx.method === 'POST' && ctx.path === '/api/bell') {
    const reached: number = await ctx.sse.sendByUserId(7, 'bell', { count: 3 });
    ctx.body = { reached };
  }
});

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  console.log('listening ' + address.port);
});
process.on('SIGTERM', () => {
  void hr.close({ drainMs: 0 }).finally(() => {
    server.close();
    server.closeAllConnections();
  });
});
`;

/** Makes hubs that need an engine the consumer does not have (no mDNS here: no socket may open in this namespace). */
const MISSING = `import { createHub, type HubOptions } from 'koa-sse-server';

const cases: [string, HubOptions][] = [
  ['qos.file', { qos: { file: 'data/never.db' } }],
  ['redis', { cluster: { redis: 'redis://127.0.0.1:1' } }],
];
for (const [what, options] of cases) {
  try {
    createHub(options);
    console.log(what + ' no error');
  } catch (err) {
    const e = err as { code?: string; message: string };
    console.log(what + ' ' + String(e.code) + ' ' + e.message);
  }
}
`;

// A Node project: no DOM lib, so server types must not lean on browser globals (and
// checking lib.dom.d.ts would cost a third of the type-check).
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    outDir: 'build',
    rootDir: 'src',
  },
  include: ['src'],
};

/** Starts the built app and answers its port; stopped when the test ends. */
function start(t: { teardown(fn: () => void): void }, cwd: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['build/app.js'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const m = /listening (\d+)/.exec(output);
      if (m) resolve({ child, port: Number(m[1]) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`the app exited (${code}) before listening:\n${output}`)));
  });
}

interface Frame {
  event: string;
  data: string;
}

/** A plain HTTP GET of an SSE stream; `next(event)` waits for the next frame of that name. */
function openStream(port: number, path: string): { next(event: string): Promise<string>; close(): void } {
  const queue: Frame[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let ended = false;
  const req = request({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) failure = new Error(`stream answered ${res.statusCode}`);
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk.replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length > 0) queue.push({ event, data: data.join('\n') });
      }
      wake?.();
    });
    res.on('close', () => {
      ended = true;
      wake?.();
    });
  });
  req.on('error', (err) => {
    failure = err;
    wake?.();
  });
  req.end();
  const next = async (event: string): Promise<string> => {
    for (;;) {
      const frame = queue.shift();
      if (frame !== undefined) {
        if (frame.event === event) return frame.data;
      } else if (failure !== undefined) throw failure;
      else if (ended) throw new Error(`the stream ended before ${event}`);
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return { next, close: () => req.destroy() };
}

/**
 * The TypeScript and @types/node versions a consumer may have: the oldest we support (README
 * "Requirements"), the ones this repo builds with, and the newest published today. The newest
 * is what a new project installs, so it is resolved from the registry on every run: a release
 * that breaks our published types fails here first.
 */
const CONSUMERS = [
  { name: 'oldest supported', typescript: 'typescript@5.0.4', typesNode: '@types/node@20.12.0', engines: [] },
  { name: 'this repo', typescript: locked('typescript'), typesNode: locked('@types/node'), engines: [] },
  { name: 'latest', typescript: 'typescript@latest', typesNode: '@types/node@latest', engines: [] },
  // The optional engines (peer dependencies an app installs for the options that need them).
  {
    name: 'latest with every engine',
    typescript: 'typescript@latest',
    typesNode: '@types/node@latest',
    engines: [locked('better-sqlite3'), 'ioredis@6', locked('multicast-dns')],
  },
] as const;

/** Optional engines: loaded only when configured, so the published types must not import them. */
const OPTIONAL_ENGINES = ['ioredis', 'better-sqlite3', 'multicast-dns'];

/** Makes a strict consumer project with `app.ts` and installs the tarball and `extra` into it. */
async function consumerProject(dir: string, extra: string[]): Promise<void> {
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2));
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  await writeFile(join(dir, 'src', 'app.ts'), APP);
  // --ignore-scripts: better-sqlite3 would compile its addon from source (about a minute
  // here); the addon loads only when a durable queue opens, which this app never does.
  await run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      '--no-package-lock',
      tarball,
      locked('koa'),
      locked('@types/koa'),
      ...extra,
    ],
    dir,
  );
}

test('the published types import no optional engine, from any entry point', async (t) => {
  const root = join(work, 'extracted', 'package');
  const seen = new Set<string>();
  const bare = new Map<string, string>();
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) await visit(join(posix.dirname(file), spec.replace(/\.js$/, '.d.ts')));
      else if (!bare.has(spec)) bare.set(spec, file.slice(root.length + 1));
    }
  };
  await visit(join(root, 'dist/lib/index.d.ts'));
  await visit(join(root, 'dist/browser/types/index.d.ts'));
  t.true(seen.size > 20, `only ${seen.size} declaration files reached: the walk is broken`);
  const leaks = [...bare].filter(([spec]) => OPTIONAL_ENGINES.some((e) => spec === e || spec.startsWith(`${e}/`)));
  t.deepEqual(leaks, [], 'a published declaration imports an optional engine');
});

for (const consumer of CONSUMERS) {
  test(`a strict consumer type-checks the published types: ${consumer.name} (${consumer.typescript}, ${consumer.typesNode})`, async (t) => {
    t.timeout(180_000);
    const dir = join(work, `consumer-${consumer.name.replace(/\W+/g, '-')}`);
    await consumerProject(dir, [consumer.typescript, consumer.typesNode, ...consumer.engines]);
    for (const engine of OPTIONAL_ENGINES) {
      t.is(existsSync(join(dir, 'node_modules', engine)), consumer.engines.length > 0, `${engine} installed or not as the matrix says`);
    }
    const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
    t.log(`tsc ${(await run(process.execPath, [tsc, '--version'], dir)).trim()}`);
    // --noEmit: the app only has to type-check here; the next test runs it.
    await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--noEmit'], dir);
    t.pass();
  });
}

test('a strict TypeScript consumer without prom-client type-checks against the types and runs the app', async (t) => {
  t.timeout(120_000);
  let started = Date.now();
  const consumer = join(work, 'consumer');
  await consumerProject(consumer, [locked('@types/node'), locked('typescript')]);
  await writeFile(join(consumer, 'src', 'missing.ts'), MISSING);
  // An app that uses no optional engine installs none of them.
  for (const engine of OPTIONAL_ENGINES) t.false(existsSync(join(consumer, 'node_modules', engine)), `${engine} got installed`);
  t.log(`npm install: ${Date.now() - started} ms`);
  t.false(existsSync(join(consumer, 'node_modules', 'prom-client')), 'prom-client got installed: the check would prove nothing');

  started = Date.now();
  await run(process.execPath, [join(consumer, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], consumer);
  t.log(`tsc: ${Date.now() - started} ms`);

  // Asking for a missing engine fails when the hub is made, naming the package and the option.
  const missing = await run(process.execPath, ['build/missing.js'], consumer);
  t.regex(missing, /^qos\.file ERR_SSE_MISSING_ENGINE Install better-sqlite3 to use qos\.file/m);
  t.regex(missing, /^redis ERR_SSE_MISSING_ENGINE Install ioredis to use the Redis engine/m);

  const { child, port } = await start(t, consumer);
  const stream = openStream(port, '/sse/hr/connect?access-token=7');
  try {
    const finish = JSON.parse(await stream.next('connect-finish')) as { connectionId?: unknown; version?: unknown };
    t.is(typeof finish.connectionId, 'string');
    // The library finds its own package.json in the installed package.
    t.is(finish.version, pkg.version);

    const bell = await fetch(`http://127.0.0.1:${port}/api/bell`, { method: 'POST' });
    t.deepEqual(await bell.json(), { reached: 1 });
    t.deepEqual(JSON.parse(await stream.next('bell')), { count: 3 });

    const script = await fetch(`http://127.0.0.1:${port}/sse/hr/sse.js`);
    t.is(script.status, 200);
    t.regex(script.headers.get('content-type') ?? '', /^text\/javascript/);
    t.regex(await script.text(), /koa-sse-server browser client/);
  } finally {
    stream.close();
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.is(await exited, 0, 'the app did not stop cleanly');
});
