// Lint rules for Flywheel: recommended JS + TypeScript checks, and a fence that keeps workflows/ free of I/O.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Workflows run in Temporal's deterministic sandbox: anything that touches the outside world belongs in an activity.
const sandboxMessage =
  'workflows/ (and features/workflow.ts) runs in the Temporal sandbox: move I/O into an activity (type-only imports are fine).';

export default defineConfig(
  {
    ignores: ['node_modules/', 'sdk/', 'schema/migrations/', 'dist/', 'web/dist/', 'bench/out/', '.*/'],
  },
  js.configs.recommended,
  // Not the type-checked variants: lint stays a few seconds and needs no program build.
  tseslint.configs.recommended,
  {
    files: ['**/*.js', '**/*.mjs'],
    // The two JS entry points run under Node only.
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    rules: {
      // `_`-prefixed names mark a deliberately unused parameter or destructured field.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Names, paths and headers are validated by rejecting control characters, so `\x00-\x1f` in a regex is the point.
      'no-control-regex': 'off',
      // Prettier wraps code at 120 columns; comments are wrapped by hand. Long messages stay greppable on one line.
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreUrls: true, ignoreRegExpLiterals: true },
      ],
    },
  },
  {
    files: ['tests/**/*.ts'],
    rules: {
      // Tests read JSON response bodies by path (`body.model.version`); `any` there is deliberate, not leaked.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // The feature store's materialisation workflow lives with the feature store but runs in the same sandbox.
    files: ['workflows/**/*.ts', 'features/workflow.ts'],
    rules: {
      // The typescript-eslint variant understands `allowTypeImports`; the base rule would double-report.
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: builtinModules.map((name) => ({ name, message: sandboxMessage, allowTypeImports: true })),
          patterns: [
            {
              regex: '^node:',
              message: sandboxMessage,
              allowTypeImports: true,
            },
            {
              regex: '^(pg|pg-cursor|drizzle-orm|minio|@temporalio/(activity|worker|client))(/|$)',
              message: sandboxMessage,
              allowTypeImports: true,
            },
            {
              regex: '^\\.\\./(activities|storage|store|serving|server)(/|$)',
              message: sandboxMessage,
              allowTypeImports: true,
            },
            {
              // features/workflow.ts's I/O neighbours: the store, the online lookup and the activities.
              regex: '^\\./(store|online|activities)$',
              message: sandboxMessage,
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
