// A build of lib/ to benchmark beside another: lib/ and package.json (for its version) of a
// commit, or of the working tree, in a temp folder that shares node_modules, so that every
// build loads from the same kind of place.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { root } from './procs.js';

/**
 * Copies lib/ of `commit` ('' = the working tree; an absolute path = that lib/ folder, a
 * bench-only build with a feature switched off) to a temp folder; answers the folder.
 */
export function checkout(commit: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sse-bench-build-'));
  if (commit === '' || isAbsolute(commit)) {
    cpSync(commit === '' ? join(root, 'lib') : commit, join(dir, 'lib'), { recursive: true });
    cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  } else {
    const tar = execFileSync('git', ['archive', '--format=tar', commit, 'lib', 'package.json'], { cwd: root, maxBuffer: 64 << 20 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/**
 * Compiles a {@link checkout}'s lib/ with tsc, as the package ships it (dist/lib), into
 * `<dir>/built`; answers that folder. tsx, which runs the benchmarks, transpiles with
 * esbuild's `keepNames`: every closure a request creates then also pays a `defineProperty`
 * for its name, which the published build does not.
 */
export function buildCheckout(dir: string): string {
  const config = {
    extends: join(root, 'tsconfig.json'),
    compilerOptions: { rootDir: 'lib', outDir: 'built', declaration: false, sourceMap: false },
    include: ['lib'],
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(config));
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { stdio: 'inherit' });
  return join(dir, 'built');
}

/** Removes a folder made by {@link checkout}. */
export function removeCheckout(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
