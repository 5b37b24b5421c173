import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'suites/**/*.test.ts'],
    // Shape-faithful models (hundreds of MB to 2 GB) run only in the nightly job: TMGT_NIGHTLY=1 (make nightly).
    exclude: process.env['TMGT_NIGHTLY'] === '1' ? ['**/node_modules/**'] : ['**/node_modules/**', 'test/nightly/**'],
    pool: 'forks',
    // Two test files at a time on two cores: many tests wait on subprocesses (llama.cpp, npm, Chromium, converters).
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
