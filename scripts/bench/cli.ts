// A benchmark's command line: `--name value` options and `--name` flags.
const argv = process.argv.slice(2);

/** The value after `--name` on the command line, or `fallback` (undefined without one) when it is not there. */
export function opt(name: string): string | undefined;
export function opt(name: string, fallback: string): string;
export function opt(name: string, fallback?: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
}

/** Whether `--name` is on the command line. */
export function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}
