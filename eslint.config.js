// ESLint for the TypeScript (lib, bench, test) and the JavaScript around it (bin, scripts);
// `npm run lint` runs it with Prettier and clang-format (CONTRIBUTING.md). Layout is Prettier's
// business, so no rule here is about layout.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX, createNodeResolver } from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native/', 'labs/', 'templates/', 'profiles/', 'lib/config/syscalls.ts'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      // The sources import './x.js' for ./x.ts (NodeNext): resolve them as tsc does.
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.mjs', '.json'], extensionAlias: { '.js': ['.ts', '.js'] } })],
    },
    rules: {
      // A cycle between files, static or through await import(), type-only imports aside. The
      // layer and package rules are the layer test's (test/unit/layers.test.ts).
      'import-x/no-cycle': 'error',
      // Promises: the rules that matter for a long-lived server. An async listener on an
      // EventEmitter (child.on('close', async ...)) is the code's habit and is fine when it
      // cannot reject, so only void-returning arguments are let through.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': [
        'warn',
        { args: 'after-used', argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      // Off: each would need wide rewrites for little gain. YAML, JSON and yargs' argv are `any`
      // or `unknown` by nature and are checked by hand where they enter (no-unsafe-*,
      // no-base-to-string, restrict-*); async functions without await keep a uniform
      // signature; `let x = []; try { x = ... } catch { return }` is deliberate.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/restrict-plus-operands': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      'no-useless-assignment': 'off',
      // `let [name, inner] = ...` where one is reassigned, and a `let` a cleanup closure reads
      // before its first assignment, are fine.
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
    },
  },
  {
    // The bench and the tests rethrow what they caught and await mixed arrays.
    files: ['bench/**', 'test/**'],
    rules: {
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/await-thenable': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
