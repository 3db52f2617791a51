// The committed API report (etc/koa-sse-server.api.md, API Extractor's listing of the
// published types) is current: the declarations are emitted afresh into .tmp/ with the
// build's settings (stripInternal), and API Extractor compares their report with the
// committed one. A change to the public surface without `npm run api:update` fails here, so
// every change of the API shows in review as a diff of that file.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';
import test from 'ava';

const ROOT = path.resolve(import.meta.dirname, '..');

test('etc/koa-sse-server.api.md is the report of the published types now', async (t) => {
  const out = path.join(ROOT, '.tmp', `api-report-${process.pid}-${Date.now()}`);
  mkdirSync(out, { recursive: true });
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const tsc = spawn(
    process.execPath,
    [
      path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      'tsconfig.build.json',
      '--emitDeclarationOnly',
      '--declarationMap',
      'false',
      '--outDir',
      out,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  tsc.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  tsc.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(tsc, 'exit')) as [number | null];
  t.is(code, 0, output);

  const base = ExtractorConfig.loadFile(path.join(ROOT, 'api-extractor.json'));
  const config = ExtractorConfig.prepare({
    configObject: {
      ...base,
      projectFolder: ROOT,
      mainEntryPointFilePath: path.join(out, 'lib', 'index.d.ts'),
      apiReport: { ...base.apiReport!, enabled: true, reportFolder: path.join(ROOT, 'etc'), reportTempFolder: path.join(out, 'report') },
    },
    configObjectFullPath: path.join(ROOT, 'api-extractor.json'),
    packageJsonFullPath: path.join(ROOT, 'package.json'),
  });
  const messages: string[] = [];
  const result = Extractor.invoke(config, {
    localBuild: false,
    messageCallback: (message) => {
      messages.push(message.text);
      message.handled = true;
    },
  });
  t.false(result.apiReportChanged, 'the public API changed: run `npm run api:update`, review and commit etc/koa-sse-server.api.md');
  t.true(result.succeeded, messages.join('\n'));
});
