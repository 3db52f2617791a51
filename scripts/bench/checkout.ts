// A build of lib/ to benchmark beside another: lib/ and package.json (for its version) of a
// commit, or of the working tree, in a temp folder that shares node_modules, so that every
// build loads from the same kind of place.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './procs.js';

/** Copies lib/ of `commit` ('' = the working tree) to a temp folder; answers the folder. */
export function checkout(commit: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sse-bench-build-'));
  if (commit === '') {
    cpSync(join(root, 'lib'), join(dir, 'lib'), { recursive: true });
    cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  } else {
    const tar = execFileSync('git', ['archive', '--format=tar', commit, 'lib', 'package.json'], { cwd: root, maxBuffer: 64 << 20 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Removes a folder made by {@link checkout}. */
export function removeCheckout(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
