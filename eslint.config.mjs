// ESLint as in temporalio/samples-typescript: typed rules that catch un-awaited promises (a floating promise in
// an activity loses its error; in a workflow it breaks determinism), and workflow files kept free of Node built-ins
// and I/O: at runtime they import @temporalio/workflow, their siblings and the pure domain (src/domain/), which
// itself imports no Node built-in, no I/O library and nothing outside its folder.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Node's built-in modules, plain and `node:`: no workflow or domain file imports them (as samples-typescript). */
const NODE_BUILTINS = builtinModules
  .flatMap((name) => [name, `node:${name}`])
  .map((name) => ({ name, allowTypeImports: true, message: 'workflow and domain code use no Node built-in module' }));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bin/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      // Empty arrow functions are the idiom for "ignore this rejection" and no-op callbacks.
      '@typescript-eslint/no-empty-function': 'off',
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: at runtime only @temporalio/workflow, its own siblings
    // and the pure domain; anything else (activities, the rest of src/) as `import type` only, erased before bundling.
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: NODE_BUILTINS,
          patterns: [
            {
              regex: '^(?!@temporalio/workflow$|\\./|\\.\\./src/domain/)',
              allowTypeImports: true,
              message:
                'workflow code imports only @temporalio/workflow, ./ siblings and ../src/domain/ at runtime (use `import type` for the rest)',
            },
          ],
        },
      ],
    },
  },
  {
    // The domain is what workflows, activities and reports share: pure, so it may run in the workflow sandbox.
    files: ['src/domain/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: NODE_BUILTINS,
          patterns: [
            {
              regex: '^(\\.\\./|@temporalio/|pg$|mysql2|undici|csv-parse)',
              allowTypeImports: true,
              message:
                'src/domain/ is pure: no I/O library and nothing outside src/domain/ at runtime (use `import type` for the rest)',
            },
          ],
        },
      ],
    },
  },
  prettier,
);
