#!/usr/bin/env node
// Runs the test suite and ends with the plain `N passed, N failed` line that CI reads.
//
// Two ava runs, each with TAP output passed through:
//   1. everything but test/browser (package.json ava config);
//   2. test/browser (test/browser/ava.config.mjs), inside a fresh loopback-only network
//      namespace: Chromium must never reach a real network, and the test servers must live
//      in the same namespace as the browser. The namespace is deleted afterwards, also on
//      failure or signal. Without root the browser tests run outside it and skip themselves.
// File arguments go to the run they belong to; flags (starting with `-`) go to both.
// Under CI (CI=true) a skipped test is a failure: a prerequisite missing in CI means CI is
// broken, not that the test may be ignored.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

const ci = process.env.CI === 'true' || process.env.CI === '1';
const AVA = 'node_modules/ava/entrypoints/cli.mjs';
const BROWSER_CONFIG = 'test/browser/ava.config.mjs';

const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('-'));
const files = args.filter((a) => !a.startsWith('-'));
const isBrowserFile = (f) => /(^|\/)test\/browser\//.test(f);
const mainFiles = files.filter((f) => !isBrowserFile(f));
const browserFiles = files.filter(isBrowserFile);
const runMain = files.length === 0 || mainFiles.length > 0;
const runBrowser = files.length === 0 || browserFiles.length > 0;

const totals = { passed: 0, failed: 0, skipped: 0, skippedNames: [], exitCodes: [] };
let namespace;
let child;

/** Runs one ava, counting its TAP results into `totals`. */
function ava(command, commandArgs, env = process.env) {
  return new Promise((resolve) => {
    child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'], env });
    const failedBefore = totals.failed;
    createInterface({ input: child.stdout }).on('line', (line) => {
      console.log(line);
      const m = /^(not ok|ok)\s+\d+\s*(?:-\s*)?(.*)$/.exec(line);
      if (!m) return;
      if (/#\s*(SKIP|TODO)/i.test(m[2])) {
        totals.skipped++;
        totals.skippedNames.push(m[2]);
      } else if (m[1] === 'ok') totals.passed++;
      else totals.failed++;
    });
    child.on('close', (code, signal) => {
      child = undefined;
      totals.exitCodes.push(code ?? (signal ? 1 : 0));
      // ava itself failed (a crash, a reporter error on a timeout) without a failed test to
      // show for it: the summary line must not read "0 failed".
      if ((code !== 0 || signal) && totals.failed === failedBefore) {
        totals.failed++;
        console.log(`not ok - ava exited with ${signal ?? `code ${code}`} and no failed test reported`);
      }
      resolve();
    });
  });
}

function ip(...ipArgs) {
  return spawnSync('ip', ipArgs, { encoding: 'utf8' });
}

/** Creates the loopback-only namespace, or answers why it cannot. */
function createNamespace() {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { reason: 'not running as root' };
  const name = `sse-browser-${process.pid}-${randomBytes(3).toString('hex')}`;
  const add = ip('netns', 'add', name);
  if (add.error || add.status !== 0) return { reason: `ip netns add failed: ${(add.error?.message ?? add.stderr).trim()}` };
  namespace = name;
  const up = ip('-n', name, 'link', 'set', 'lo', 'up');
  if (up.status !== 0) return { reason: `ip link set lo up failed: ${up.stderr.trim()}` };
  return { name };
}

function deleteNamespace() {
  if (namespace === undefined) return;
  const name = namespace;
  namespace = undefined;
  const del = ip('netns', 'del', name);
  if (del.status !== 0) console.error(`# could not delete network namespace ${name}: ${del.stderr.trim()}`);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    child?.kill(signal);
    deleteNamespace();
    process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
  });
}
process.on('exit', deleteNamespace);

if (runMain) {
  await ava(process.execPath, [AVA, '--tap', ...flags, ...mainFiles]);
}

if (runBrowser) {
  const avaArgs = [AVA, '--config', BROWSER_CONFIG, '--tap', ...flags, ...browserFiles];
  const ns = createNamespace();
  try {
    if (ns.name !== undefined) {
      console.log(`# browser tests in loopback-only network namespace ${ns.name}`);
      await ava('ip', ['netns', 'exec', ns.name, process.execPath, ...avaArgs], { ...process.env, SSE_BROWSER_NETNS: ns.name });
    } else {
      console.log(`# browser tests cannot get a network namespace (${ns.reason}): they will skip`);
      const env = { ...process.env, SSE_BROWSER_SKIP: ns.reason };
      delete env.SSE_BROWSER_NETNS;
      await ava(process.execPath, avaArgs, env);
    }
  } finally {
    deleteNamespace();
  }
}

let { passed, failed, skipped } = totals;
if (ci && skipped > 0) {
  console.log(`# under CI a skip is a failure: ${totals.skippedNames.join('; ')}`);
  failed += skipped;
  skipped = 0;
}
if (passed + failed === 0) {
  console.log('# no test ran');
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(totals.exitCodes.some((c) => c !== 0) || failed > 0 ? 1 : 0);
