// Local ESLint rules for the layer rule of lib/ (see LAYERS in eslint.config.js).
//
//   local/in-a-layer   every file under lib/ belongs to exactly one layer, so a new file cannot
//                      silently escape the import-x/no-restricted-paths zones built from LAYERS.
//   local/no-type-cycle  an import cycle in which at least one link is a type-only import.
//                      import-x/no-cycle skips type-only imports by design (it only sees cycles
//                      that exist at run time); this rule reports the rest, so that together the
//                      two fail on every cycle, type imports included. A cycle made of value
//                      imports alone is left to import-x/no-cycle (no double report).
//
// The import graph is read with typescript-estree (no type information: fast) and only
// relative specifiers are followed (`./x.js` → `./x.ts`, as NodeNext and Bundler resolve
// them here); packages cannot be part of a cycle of this repository.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@typescript-eslint/typescript-estree';
import { minimatch } from 'minimatch';

/** @type {Map<string, { mtimeMs: number, edges: { to: string, typeOnly: boolean, specifier: string }[] }>} */
const graphCache = new Map();

function resolveRelative(fromFile, specifier) {
  const base = path.resolve(path.dirname(fromFile), specifier);
  const candidates = [];
  const ext = path.extname(base);
  if (ext === '.js') candidates.push(base.slice(0, -3) + '.ts', base.slice(0, -3) + '.tsx');
  else if (ext === '.mjs') candidates.push(base.slice(0, -4) + '.mts');
  else if (ext === '.cjs') candidates.push(base.slice(0, -4) + '.cts');
  candidates.push(base);
  if (ext === '') candidates.push(base + '.ts', base + '.js', path.join(base, 'index.ts'), path.join(base, 'index.js'));
  for (const candidate of candidates) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const allTypes = (specifiers, kind) => specifiers.length > 0 && specifiers.every((s) => s[kind] === 'type');

/** The relative imports of one module, with whether each is type-only. */
function edgesOf(program, file) {
  const edges = [];
  const add = (source, typeOnly) => {
    if (typeof source !== 'string' || !source.startsWith('.')) return;
    const to = resolveRelative(file, source);
    if (to !== undefined) edges.push({ to, typeOnly, specifier: source });
  };
  const visit = (node) => {
    if (node === null || typeof node !== 'object') return;
    switch (node.type) {
      case 'ImportDeclaration':
        add(node.source.value, node.importKind === 'type' || allTypes(node.specifiers, 'importKind'));
        break;
      case 'ExportNamedDeclaration':
        if (node.source) add(node.source.value, node.exportKind === 'type' || allTypes(node.specifiers, 'exportKind'));
        break;
      case 'ExportAllDeclaration':
        add(node.source.value, node.exportKind === 'type');
        break;
      case 'ImportExpression':
        if (node.source.type === 'Literal') add(node.source.value, false);
        break;
      case 'TSImportType':
        // `import('./x.js').T` in a type position
        if (node.argument?.type === 'TSLiteralType') add(node.argument.literal.value, true);
        break;
    }
    for (const key in node) {
      if (key === 'parent' || key === 'loc' || key === 'range') continue;
      const child = node[key];
      if (Array.isArray(child)) child.forEach(visit);
      else if (child && typeof child.type === 'string') visit(child);
    }
  };
  visit(program);
  return edges;
}

function moduleEdges(file) {
  let mtimeMs;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return [];
  }
  const cached = graphCache.get(file);
  if (cached && cached.mtimeMs === mtimeMs) return cached.edges;
  let edges = [];
  try {
    const program = parse(readFileSync(file, 'utf8'), { jsx: file.endsWith('x'), range: false, loc: false, comment: false });
    edges = edgesOf(program, file);
  } catch {
    // unparsable: its own lint run reports it
  }
  graphCache.set(file, { mtimeMs, edges });
  return edges;
}

/** A shortest path (list of files) from `start` to `goal`, following value imports only when `valueOnly`. */
function findPath(start, goal, valueOnly) {
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const current = queue.shift();
    if (current === goal) {
      const route = [];
      for (let at = goal; at !== undefined; at = previous.get(at)) route.unshift(at);
      return route;
    }
    for (const edge of moduleEdges(current)) {
      if (valueOnly && edge.typeOnly) continue;
      if (previous.has(edge.to)) continue;
      previous.set(edge.to, current);
      queue.push(edge.to);
    }
  }
  return undefined;
}

const inALayer = {
  meta: {
    type: 'problem',
    docs: { description: 'Every file of a layered folder belongs to one of the layers' },
    schema: [
      {
        type: 'object',
        properties: { root: { type: 'string' }, layers: { type: 'array' } },
        required: ['root', 'layers'],
        additionalProperties: false,
      },
    ],
    messages: {
      none: '{{file}} belongs to no layer: add it to LAYERS in eslint.config.js',
      many: '{{file}} belongs to several layers ({{names}}): fix LAYERS in eslint.config.js',
    },
  },
  create(context) {
    const [{ root, layers }] = context.options;
    const file = context.physicalFilename;
    const names = layers.filter((layer) => layer.files.some((pattern) => minimatch(file, pattern))).map((layer) => layer.name);
    if (names.length === 1) return {};
    const relative = path.relative(root, file);
    return {
      Program(node) {
        context.report({ node, messageId: names.length === 0 ? 'none' : 'many', data: { file: relative, names: names.join(', ') } });
      },
    };
  },
};

const noTypeCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'No import cycle that import-x/no-cycle misses because a link of it is a type-only import' },
    schema: [
      {
        type: 'object',
        properties: { root: { type: 'string' } },
        required: ['root'],
        additionalProperties: false,
      },
    ],
    messages: {
      cycle: 'Dependency cycle through a type-only import: {{route}}',
    },
  },
  create(context) {
    const [{ root }] = context.options;
    const file = context.physicalFilename;
    const check = (node, typeOnly) => {
      const specifier = node.source?.value ?? node.argument?.literal?.value;
      if (typeof specifier !== 'string' || !specifier.startsWith('.')) return;
      const target = resolveRelative(file, specifier);
      if (target === undefined || target === file) return;
      // import-x/no-cycle reports a value import whose target reaches back through value imports.
      if (!typeOnly && findPath(target, file, true) !== undefined) return;
      const back = findPath(target, file, false);
      if (back === undefined) return;
      const route = [file, ...back].map((f) => path.relative(root, f)).join(' → ');
      context.report({ node: node.source ?? node, messageId: 'cycle', data: { route } });
    };
    return {
      ImportDeclaration(node) {
        check(node, node.importKind === 'type' || allTypes(node.specifiers, 'importKind'));
      },
      ExportNamedDeclaration(node) {
        if (node.source) check(node, node.exportKind === 'type' || allTypes(node.specifiers, 'exportKind'));
      },
      ExportAllDeclaration(node) {
        check(node, node.exportKind === 'type');
      },
      ImportExpression(node) {
        if (node.source.type === 'Literal') check(node, false);
      },
      TSImportType(node) {
        if (node.argument?.type === 'TSLiteralType') check(node, true);
      },
    };
  },
};

export default {
  meta: { name: 'local' },
  rules: { 'in-a-layer': inALayer, 'no-type-cycle': noTypeCycle },
};
