// Lint gate (make lint, and make test before the tests): typescript-eslint with type information, the layer direction
// of DESIGN.md §3 and casts that say why (tools/eslint-rules.js). Formatting is prettier's (.prettierrc.json).
import tseslint from 'typescript-eslint';
import tmgt from './tools/eslint-rules.js';

export default tseslint.config(
  { ignores: ['node_modules/**', '.cache/**', 'reports/**', 'coverage/**', '**/*.wasm', 'src/engine/wasm/assembly/**', 'dist/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { tmgt },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'tmgt/layers': 'error',
    },
  },
  { files: ['src/**/*.ts'], rules: { 'tmgt/cast-needs-comment': 'error' } },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
