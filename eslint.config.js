// ESLint for the whole repository: lib/, browser/, dashboard/, test/, scripts/, example/.
// Formatting is Prettier's job (`npm run format`); no rule here is about layout.
import path from 'node:path';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import local from './eslint-local-rules.js';

const root = import.meta.dirname;
const abs = (pattern) => path.join(root, pattern);

// The layers of lib/, lowest first. A file may import only from its own layer and lower ones,
// type imports included. lib/options.ts counts as "hub" until it is split up. Every entry is a
// glob (import-x/no-restricted-paths wants glob exceptions when `from` is a glob).
const LAYERS = [
  { name: 'core', files: ['lib/core/**'] },
  { name: 'redis', files: ['lib/redis/**'] },
  { name: 'local', files: ['lib/local/**'] },
  { name: 'qos', files: ['lib/qos/**'] },
  { name: 'cluster', files: ['lib/cluster/**'] },
  { name: 'hub', files: ['lib/{hub,hub-options,metrics,options}.ts'] },
  { name: 'http', files: ['lib/http/**'] },
  { name: 'workers', files: ['lib/workers/**'] },
  { name: 'plugin', files: ['lib/{plugin,index,emitter,testing}.ts'] },
].map((layer) => ({ ...layer, files: layer.files.map(abs) }));

const layerZones = LAYERS.map((layer, i) => {
  const allowed = LAYERS.slice(0, i + 1);
  return {
    target: layer.files,
    // Everything in lib/ but the allowed layers: a higher layer, or a file in no layer yet.
    from: [abs('lib/**')],
    except: allowed.flatMap((l) => l.files),
    message: `Layer "${layer.name}" may import only from ${allowed.map((l) => `"${l.name}"`).join(', ')} (layers of lib/ in eslint.config.js).`,
  };
});

const boundaryZones = [
  {
    target: [abs('browser/**'), abs('dashboard/**')],
    from: [abs('lib/**')],
    except: [abs('lib/core/**')],
    message: 'browser/ and dashboard/ may use lib/core/ only: the rest of lib/ is server code.',
  },
  {
    target: [abs('lib/**')],
    from: ['test', 'scripts', 'example', 'browser', 'dashboard'].map((dir) => abs(`${dir}/**`)),
    message: 'The library must not depend on tests, scripts, the example or the browser code.',
  },
];

export default defineConfig([
  globalIgnores(['dist/', 'node_modules/', 'data/', '.tmp/', 'test-results/', 'docs/api/']),

  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  importX.flatConfigs.recommended,
  importX.flatConfigs.typescript,

  {
    name: 'project/all',
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      parserOptions: {
        // Each file is checked with the tsconfig.json nearest to it: the root one (lib, test,
        // example, scripts), browser/, dashboard/ or test/browser/.
        projectService: true,
        tsconfigRootDir: root,
      },
    },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          project: [
            'tsconfig.json',
            'browser/tsconfig.json',
            'dashboard/tsconfig.json',
            'test/browser/tsconfig.json',
            'test/unit/browser/tsconfig.json',
          ].map(abs),
          noWarnOnMultipleProjects: true,
        }),
      ],
    },
    plugins: { local },
    rules: {
      // --- cycles and layers ---
      // Value cycles everywhere (the ones that bite at run time); local/no-type-cycle adds,
      // in lib/, the cycles that go through a type-only import, which import-x/no-cycle skips.
      // ignoreExternal: a cycle cannot run through a package, and not parsing them is most of the speed.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': ['error', { basePath: root, zones: [...layerZones, ...boundaryZones] }],
      'import-x/no-self-import': 'error',

      // --- choices against churn ---
      // Off: the `!` on indexed access is written for noUncheckedIndexedAccess (on in browser/
      // and dashboard/, off in the root tsconfig), so "unnecessary" there is only a restyle.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Off: `async` without `await` is how this code keeps Promise-returning interface methods
      // (transports, Connection.send, Qos.cancel) and turns a synchronous throw into a rejection.
      '@typescript-eslint/require-await': 'off',
      // Off: fast-check (`fc.string`) and typescript-eslint (`tseslint.configs`) are documented
      // this way; TypeScript already checks the member exists.
      'import-x/no-named-as-default-member': 'off',
      // Off: TypeScript checks the members of `import * as x`, and the JavaScript here (build
      // scripts, this config) has none; the rule parsed whole packages such as esbuild for it.
      'import-x/namespace': 'off',
      // Forwarding a caught error or an AbortSignal's reason is not inventing a non-Error
      // rejection (same defaults as only-throw-error).
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // `_` marks a deliberately unused binding (`for (const _ of it) n++`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],

      // --- a few more that catch bugs ---
      eqeqeq: ['error', 'smart'],
      'import-x/no-duplicates': 'error',
    },
  },

  {
    name: 'project/ts',
    files: ['**/*.ts'],
    rules: {
      // Off in TypeScript, which checks both already (typescript-eslint's advice); they parse
      // every imported package again for it.
      'import-x/default': 'off',
      'import-x/no-unresolved': 'off',
    },
  },

  {
    name: 'project/browser',
    files: ['browser/**/*.ts'],
    rules: {
      // No circle in the client either, type-only imports included: the options do not name
      // the client (SseClientView), the tab-sharing chunk is loaded by the client, never back.
      'local/no-type-cycle': ['error', { root }],
    },
  },

  {
    name: 'project/lib',
    files: ['lib/**/*.ts'],
    rules: {
      'local/in-a-layer': ['error', { root, layers: LAYERS }],
      // Cycles through type-only imports: in lib/ they are coupling the layers forbid (and
      // in browser/, project/browser below).
      'local/no-type-cycle': ['error', { root }],
      // A published library: only dependencies and peerDependencies may be imported.
      'import-x/no-extraneous-dependencies': ['error', { devDependencies: false, optionalDependencies: false, peerDependencies: true }],
      // An SseError's message is ours and a client may see it (lib/http/response.ts): another
      // error's text (a Redis address, a parser's detail) goes in `cause`, never in the message.
      'no-restricted-syntax': [
        'error',
        ...["MemberExpression[property.name='message']", "CallExpression[callee.name='String']"].map((inner) => ({
          selector: `NewExpression[callee.name=/^Sse\\w*Error$/] ${inner}`,
          message: "An SseError's message must not quote another error: pass it as `{ cause }` (see lib/http/response.ts).",
        })),
      ],
    },
  },

  {
    name: 'project/lib-body',
    files: ['lib/**/*.ts'],
    // The router admits a request by its route's `access` before it makes the call through
    // which a handler reads the body (lib/http/call.ts): no other file may read one itself.
    ignores: ['lib/http/call.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)http/body\\.js$|^\\./body\\.js$',
              message: 'Read a request body through the call the router gives the handler (lib/http/call.ts): only it comes after the auth check.',
            },
          ],
        },
      ],
    },
  },

  {
    name: 'project/browser',
    files: ['browser/**/*.ts', 'dashboard/**/*.ts'],
    rules: {
      // Code that runs in a browser: no Node built-ins.
      'import-x/no-nodejs-modules': 'error',
    },
  },

  {
    name: 'project/test',
    files: ['test/**/*.ts'],
    rules: {
      // Tests read JSON answers as `any` on purpose (test/helpers/reply.ts) and check their
      // shape with assertions; typing every reply would add nothing but casts.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },

  {
    name: 'project/js',
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
]);
