import { defineConfig } from 'vitest/config';

/**
 * Two projects. `pure`: files that start nothing (no Redis, no Docker, no process), so
 * `npx vitest run --project pure` answers in seconds on any machine. `infra`: the rest,
 * each file with its own Redis on a private socket and its own labelled containers, run in
 * parallel; its global teardown fails the suite if any runlet-labelled container is left.
 * `npm test` runs both.
 */
const PURE = [
  'test/architecture.test.ts',
  'test/format.test.ts',
  'test/config.*.test.ts',
  'test/cli.labels.test.ts',
  'test/webhook.signature.test.ts',
  'test/webhook.identity.test.ts',
  'test/log-cursor.test.ts',
  'test/secret-mask.test.ts',
  'test/log-stream.abort.test.ts',
  'test/run-status.test.ts',
  'test/redis.scripts.test.ts',
  'test/redis.url.test.ts',
];

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        // Pure files first (seconds), then the rest: vitest runs projects with different
        // worker limits in separate groups.
        test: { name: 'pure', include: PURE, pool: 'threads', sequence: { groupOrder: 0 } },
      },
      {
        test: {
          name: 'infra',
          include: ['test/**/*.test.ts'],
          exclude: PURE,
          pool: 'forks',
          maxWorkers: 4,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          globalSetup: ['test/global-setup.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
