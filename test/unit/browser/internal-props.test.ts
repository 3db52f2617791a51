// The property names the browser build shortens (scripts/browser-internal-props.mjs) are the
// client's own: a built-in's member (`Math.max`, `Response.ok`), a public member (`Sse.state`, an
// option), or a field that travels (the server's JSON, a message to another tab) would break
// once shortened, in the built bundle only, where no unit test looks. Read from the TypeScript
// sources with the type checker.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const dir = fileURLToPath(new URL('../../../browser/', import.meta.url));
const propsModule = new URL('../../../scripts/browser-internal-props.mjs', import.meta.url).href;
const { INTERNAL_PROPS } = (await import(propsModule)) as { INTERNAL_PROPS: string[] };

const program = ts.createProgram(
  readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => dir + f),
  {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    strict: true,
    types: [],
  },
);
const checker = program.getTypeChecker();
const sources = program.getSourceFiles().filter((f) => f.fileName.startsWith(dir));
const file = (name: string): ts.SourceFile => sources.find((f) => f.fileName === dir + name)!;

/** Property names of a type and of the types of its members, down to `depth`, within browser/. */
function membersOf(type: ts.Type, into: Set<string>, depth: number, seen = new Set<ts.Type>()): void {
  if (depth < 0 || seen.has(type)) return;
  seen.add(type);
  if (type.isUnionOrIntersection()) {
    for (const t of type.types) membersOf(t, into, depth, seen);
    return;
  }
  const declared = (type.aliasSymbol ?? type.getSymbol())?.declarations?.[0];
  if (declared !== undefined && !declared.getSourceFile().fileName.startsWith(dir)) return;
  for (const p of checker.getPropertiesOfType(type)) {
    // `#private` members and TypeScript `private` ones are no one's API.
    const at = p.valueDeclaration ?? p.declarations?.[0];
    if (p.name.startsWith('#') || (at !== undefined && ts.getCombinedModifierFlags(at) & ts.ModifierFlags.Private)) continue;
    into.add(p.name);
    if (at !== undefined) membersOf(checker.getTypeOfSymbolAtLocation(p, at), into, depth - 1, seen);
  }
  for (const sig of [...type.getCallSignatures(), ...type.getConstructSignatures()]) {
    for (const param of sig.getParameters()) {
      if (param.valueDeclaration !== undefined) membersOf(checker.getTypeOfSymbolAtLocation(param, param.valueDeclaration), into, depth - 1, seen);
    }
    membersOf(sig.getReturnType(), into, depth - 1, seen);
  }
}

/** Every name of the public surface: the exports of index.ts and classic.ts and their members. */
function publicNames(): Set<string> {
  const names = new Set<string>();
  for (const entry of ['index.ts', 'classic.ts']) {
    const module = checker.getSymbolAtLocation(file(entry));
    if (module === undefined) continue;
    for (const exported of checker.getExportsOfModule(module)) {
      names.add(exported.name);
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const at = symbol.valueDeclaration ?? symbol.declarations?.[0];
      if (at === undefined) continue;
      membersOf(checker.getTypeOfSymbolAtLocation(symbol, at), names, 4);
      membersOf(checker.getDeclaredTypeOfSymbol(symbol), names, 4);
    }
  }
  return names;
}

/** Fields of what travels between tabs (the bus's messages) and of a parsed stream frame. */
function wireNames(): Set<string> {
  const names = new Set<string>();
  const types: Array<[string, string]> = [
    ['tab-bus.ts', 'TabMessage'],
    ['tab-bus.ts', 'TabRequest'],
    ['tab-bus.ts', 'TabAnswer'],
    ['tab-bus.ts', 'TabState'],
    ['parser.ts', 'ParsedEvent'],
  ];
  for (const [where, name] of types) {
    const symbol = checker.getSymbolsInScope(file(where), ts.SymbolFlags.Type).find((s) => s.name === name);
    if (symbol === undefined) throw new Error(`${name} not found in ${where}`);
    membersOf(checker.getDeclaredTypeOfSymbol(symbol), names, 3);
  }
  return names;
}

/** Where each name is used as a property, and the uses that are not the client's own member. */
function uses(): { count: Map<string, number>; foreign: Map<string, string[]> } {
  const wanted = new Set(INTERNAL_PROPS);
  const count = new Map<string, number>();
  const foreign = new Map<string, string[]>();
  // A member declared in a type assertion's type (`body as { data?: { retryAfter?: unknown } }`)
  // describes someone else's object: the server's JSON, `performance.memory`.
  const asserted = (node: ts.Node): boolean => {
    for (let n: ts.Node | undefined = node; n !== undefined; n = n.parent) if (ts.isAsExpression(n) || ts.isTypeAssertionExpression(n)) return true;
    return false;
  };
  const ours = (symbol: ts.Symbol | undefined): boolean =>
    symbol?.declarations !== undefined &&
    symbol.declarations.length > 0 &&
    symbol.declarations.every((d) => d.getSourceFile().fileName.startsWith(dir) && !asserted(d));
  for (const source of sources) {
    const visit = (node: ts.Node): void => {
      let name: ts.Identifier | undefined;
      let symbol: ts.Symbol | undefined;
      if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.name)) {
        name = node.name;
        symbol = checker.getSymbolAtLocation(name);
      } else if (
        (ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node) || ts.isMethodDeclaration(node)) &&
        ts.isObjectLiteralExpression(node.parent)
      ) {
        // A key of an object literal: ours only where the object is typed by one of our types.
        if (ts.isIdentifier(node.name)) {
          name = node.name;
          const contextual = checker.getContextualType(node.parent);
          symbol = contextual === undefined ? undefined : checker.getPropertyOfType(checker.getNonNullableType(contextual), name.text);
        }
      } else if (ts.isBindingElement(node) && ts.isObjectBindingPattern(node.parent)) {
        const key = node.propertyName ?? node.name;
        if (ts.isIdentifier(key)) {
          name = key;
          symbol = checker.getPropertyOfType(checker.getNonNullableType(checker.getTypeAtLocation(node.parent)), key.text);
        }
      } else if (
        (ts.isMethodDeclaration(node) ||
          ts.isPropertyDeclaration(node) ||
          ts.isGetAccessor(node) ||
          ts.isSetAccessor(node) ||
          ts.isPropertySignature(node) ||
          ts.isMethodSignature(node)) &&
        ts.isIdentifier(node.name)
      ) {
        name = node.name;
        symbol = checker.getSymbolAtLocation(name);
      }
      if (name !== undefined && wanted.has(name.text)) {
        count.set(name.text, (count.get(name.text) ?? 0) + 1);
        if (!ours(symbol)) {
          const line = source.getLineAndCharacterOfPosition(name.getStart()).line + 1;
          foreign.set(name.text, [...(foreign.get(name.text) ?? []), `${source.fileName.slice(dir.length)}:${line}`]);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { count, foreign };
}

test('every property name the build shortens is a member the client declares itself and uses', (t) => {
  const { count, foreign } = uses();
  t.deepEqual(Object.fromEntries(foreign), {}, 'used on a built-in, an untyped object, or an object literal of no type of ours');
  t.deepEqual(
    INTERNAL_PROPS.filter((name) => !count.has(name)),
    [],
    'no longer used: drop it from the list',
  );
});

test('no property name the build shortens is public or travels between tabs', (t) => {
  const shortened = new Set(INTERNAL_PROPS);
  t.deepEqual(
    [...publicNames()].filter((n) => shortened.has(n)),
    [],
    'a public member (Sse, its options, events, errors)',
  );
  t.deepEqual(
    [...wireNames()].filter((n) => shortened.has(n)),
    [],
    'a field of a message between tabs or of a parsed frame',
  );
});
