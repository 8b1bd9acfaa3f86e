// ESLint as in temporalio/samples-typescript: typed rules that catch un-awaited promises (a floating promise in
// an activity loses its error; in a workflow it breaks determinism), and workflow files kept to the one import
// the workflow sandbox allows (@temporalio/workflow) plus their own siblings and type-only imports.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

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
    // Workflow code runs in Temporal's deterministic sandbox: only @temporalio/workflow and its own siblings at
    // runtime; anything else (activities, src/) as `import type` only, which is erased before bundling.
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!@temporalio/workflow$|\\./)',
              allowTypeImports: true,
              message:
                'workflow code imports only @temporalio/workflow and ./ siblings at runtime (use `import type` for the rest)',
            },
          ],
        },
      ],
    },
  },
  prettier,
);
