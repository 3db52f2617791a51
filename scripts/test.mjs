#!/usr/bin/env node
// Runs ava with TAP output, passes it through, and ends with the plain
// `N passed, N failed` line that CI reads. Under CI (CI=true) a skipped test is a failure:
// a prerequisite missing in CI means CI is broken, not that the test may be ignored.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const ci = process.env.CI === 'true' || process.env.CI === '1';
const ava = spawn(process.execPath, ['node_modules/ava/entrypoints/cli.mjs', '--tap', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let passed = 0;
let failed = 0;
let skipped = 0;
const skippedNames = [];
createInterface({ input: ava.stdout }).on('line', (line) => {
  console.log(line);
  const m = /^(not ok|ok)\s+\d+\s*(?:-\s*)?(.*)$/.exec(line);
  if (!m) return;
  if (/#\s*SKIP/i.test(m[2])) {
    skipped++;
    skippedNames.push(m[2]);
  } else if (/#\s*TODO/i.test(m[2])) {
    skipped++;
    skippedNames.push(m[2]);
  } else if (m[1] === 'ok') passed++;
  else failed++;
});
ava.on('close', (code) => {
  if (ci && skipped > 0) {
    console.log(`# under CI a skip is a failure: ${skippedNames.join('; ')}`);
    failed += skipped;
    skipped = 0;
  }
  if (passed + failed === 0) {
    console.log('# no test ran');
    failed = 1;
  }
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code !== 0 || failed > 0 ? 1 : 0);
});
