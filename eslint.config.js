// Lint rules: the recommended sets of ESLint and typescript-eslint, plus a few that guard security defaults.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'data/**',
      'node_modules/**',
      'lib/generated/**',
      'packages/*/dist/**',
      'packages/*/protos/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "Property[key.name='rejectUnauthorized'][value.value=false]",
          message: 'Never turn off certificate verification.',
        },
        {
          selector: "CallExpression[callee.object.name=/^(it|describe|context)$/][callee.property.name='only']",
          message: 'A focused test silences the rest of the suite.',
        },
      ],
    },
  },
);
