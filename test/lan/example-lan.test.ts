// `npm run example:lan`: the example server on two hosts of a private LAN, default cluster
// options (a secret and `SSE_DISCOVERY=mdns`), finding each other by mDNS. Needs root.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { labUnavailable } from './lab.js';

const unavailable = labUnavailable();
if (unavailable) console.log(`# example-lan: skipped: ${unavailable}`);
const lanTest = unavailable ? test.skip : test.serial;

lanTest(
  'npm run example:lan: two example servers on two hosts announce their own addresses and become peers; Ctrl-C deletes the namespaces',
  async (t) => {
    const child = spawn(process.execPath, ['--import=tsx', 'scripts/example-lan.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const lines: string[] = [];
    const waiters = new Set<() => void>();
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      for (const w of waiters) w();
    });
    const seen = (pattern: RegExp, what: string, timeoutMs = 30_000): Promise<RegExpExecArray> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          for (const line of lines) {
            const m = pattern.exec(line);
            if (m) {
              waiters.delete(check);
              clearTimeout(timer);
              return resolve(m);
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no line for ${what}; got ${JSON.stringify(lines)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });

    const namespaces = (await seen(/^Two hosts on a private LAN: .*$/, 'the hosts'))[0].match(/sse-lan-[\w-]+/g)!;
    t.is(namespaces.length, 2);
    for (const n of [1, 2]) {
      const address = `192.0.2.${n}`;
      for (const system of ['hr', 'hunter']) {
        const endpoint = await seen(
          new RegExp(`^\\[node${n} ${address.replace(/\./g, '\\.')}\\] cluster node (\\w+) \\(${system}\\) internal endpoint (\\S+):\\d+$`),
          `node ${n} ${system} endpoint`,
        );
        t.is(endpoint[2], address, `node ${n} (${system}) announces its LAN address`);
        const other = 3 - n;
        const otherId = (
          await seen(new RegExp(`^\\[node${other} \\S+\\] cluster node (\\w+) \\(${system}\\) internal endpoint`), `node ${other} ${system} id`)
        )[1];
        await seen(new RegExp(`^\\[node${n} \\S+\\] peer up \\(${system}\\): ${otherId}$`), `node ${n} (${system}) meeting node ${other}`);
      }
    }
    t.false(
      lines.some((l) => /ERR_SSE_NODE_ADDRESS|app error/.test(l)),
      'no complaint about the address',
    );

    child.kill('SIGINT');
    const [code] = await exited;
    t.is(code, 0);
    await seen(/^stopped; namespaces deleted$/, 'the end');
    const left = execFileSync('ip', ['netns', 'list']).toString();
    for (const ns of namespaces) t.false(left.includes(ns), `${ns} deleted`);
  },
);
