import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Compiles src/ to dist/ once: spawned CLI and server processes run the built program.
    globalSetup: ['./test/helpers/build-cli.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Integration and e2e suites spawn processes and bind loopback ports; two workers fit the 2-core machines.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
