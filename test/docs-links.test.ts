// Every relative link in the documentation resolves: README.md and the other Markdown files
// of the repository root, and every Markdown file under docs/ (the guide and the generated API
// reference). A link to a file must name one that exists; a `#fragment` must name a heading
// of the target (GitHub's slugs, github-slugger) or an HTML `id` / `name` in it. Links inside
// code are not links (markdown-it parses the files as GitHub renders them).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import GithubSlugger from 'github-slugger';
import MarkdownIt from 'markdown-it';
import type Token from 'markdown-it/lib/token.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const md = new MarkdownIt({ html: true });

/** Markdown files of the root (not recursive) and of docs/ (recursive), as absolute paths. */
function markdownFiles(): string[] {
  const inRoot = readdirSync(ROOT)
    .filter((name) => name.endsWith('.md'))
    .map((name) => path.join(ROOT, name));
  const inDocs = readdirSync(path.join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.md'))
    .map((name) => path.join(ROOT, 'docs', name));
  return [...inRoot, ...inDocs].sort();
}

interface Parsed {
  anchors: Set<string>;
  links: { href: string; line: number }[];
}

const HTML_ID = /\b(?:id|name)\s*=\s*["']([^"']+)["']/g;
const HTML_LINK = /<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']/g;

/** The text GitHub slugs a heading from: the inline content without its markup. */
function plainText(inline: Token): string {
  return (inline.children ?? [])
    .filter((child) => child.type === 'text' || child.type === 'code_inline')
    .map((child) => child.content)
    .join('');
}

const parsedCache = new Map<string, Parsed>();

function parse(file: string): Parsed {
  const cached = parsedCache.get(file);
  if (cached) return cached;
  const tokens = md.parse(readFileSync(file, 'utf8'), {});
  const slugger = new GithubSlugger();
  const parsed: Parsed = { anchors: new Set(), links: [] };
  const fromHtml = (html: string, line: number) => {
    for (const m of html.matchAll(HTML_ID)) parsed.anchors.add(m[1]!);
    for (const m of html.matchAll(HTML_LINK)) parsed.links.push({ href: m[1]!, line });
  };
  let line = 0;
  for (const [i, token] of tokens.entries()) {
    if (token.map) line = token.map[0] + 1;
    if (token.type === 'heading_open') parsed.anchors.add(slugger.slug(plainText(tokens[i + 1]!)));
    if (token.type === 'html_block') fromHtml(token.content, line);
    for (const child of token.children ?? []) {
      if (child.type === 'link_open') parsed.links.push({ href: child.attrGet('href') ?? '', line });
      if (child.type === 'image') parsed.links.push({ href: child.attrGet('src') ?? '', line });
      if (child.type === 'html_inline') fromHtml(child.content, line);
    }
  }
  parsedCache.set(file, parsed);
  return parsed;
}

/** What is wrong with one link of `file`, or undefined when it resolves. */
function check(file: string, href: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//')) return undefined; // absolute URL
  const hash = href.indexOf('#');
  const target = decodeURIComponent(hash === -1 ? href : href.slice(0, hash));
  const fragment = hash === -1 ? undefined : decodeURIComponent(href.slice(hash + 1));
  const resolved = target === '' ? file : path.resolve(path.dirname(file), target);
  if (!resolved.startsWith(ROOT + path.sep) && resolved !== ROOT) return 'points outside the repository';
  if (!existsSync(resolved)) return `no file ${path.relative(ROOT, resolved)}`;
  if (fragment === undefined || fragment === '') return undefined;
  if (!resolved.endsWith('.md') || statSync(resolved).isDirectory()) return undefined;
  return parse(resolved).anchors.has(fragment) ? undefined : `no heading #${fragment} in ${path.relative(ROOT, resolved)}`;
}

test('every relative link and #anchor in the Markdown files resolves', (t) => {
  const files = markdownFiles();
  t.true(files.some((f) => f.endsWith(`${path.sep}README.md`)));
  t.true(
    files.some((f) => f.includes(`${path.sep}docs${path.sep}`)),
    'docs/ has Markdown files',
  );
  const problems: string[] = [];
  let checked = 0;
  for (const file of files) {
    for (const { href, line } of parse(file).links) {
      checked++;
      const problem = check(file, href);
      if (problem) problems.push(`${path.relative(ROOT, file)}:${line}: (${href}) ${problem}`);
    }
  }
  t.deepEqual(problems, []);
  t.log(`${checked} links in ${files.length} files`);
});

test('the checker finds a broken file link, a broken anchor, and accepts GitHub slugs', (t) => {
  // A fixture in memory: the same functions, so that the test above cannot pass vacuously.
  const readme = path.join(ROOT, 'README.md');
  t.regex(check(readme, 'docs/no-such-file.md') ?? '', /no file/);
  t.regex(check(readme, '#no-such-heading') ?? '', /no heading/);
  t.is(check(readme, 'https://example.com/x#y'), undefined);
  const tokens = md.parse(
    '# Coming from the Java library — endpoints and admin JSON\n\n## Durable messages in Redis (`qos: { redis }`)\n\n## A\n\n## A\n',
    {},
  );
  const slugger = new GithubSlugger();
  const slugs = tokens.filter((tok, i) => tok.type === 'inline' && tokens[i - 1]?.type === 'heading_open').map((tok) => slugger.slug(plainText(tok)));
  t.deepEqual(slugs, ['coming-from-the-java-library--endpoints-and-admin-json', 'durable-messages-in-redis-qos--redis-', 'a', 'a-1']);
});
