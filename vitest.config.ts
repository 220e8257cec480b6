import { defineConfig } from 'vitest/config';

// Test files are independent (each starts its own Redis on a private socket and labels
// its containers), so they run in parallel; the global teardown fails the suite if any
// runlet-labelled container is left behind.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 4,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default'],
  },
});
