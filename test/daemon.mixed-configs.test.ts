import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

// A rolling config change: two daemons on one Redis, one with a file that has a new `after:`
// follower and one with the file of before. Both read the ended-runs stream (both have a
// follower), so on a shared consumer group each end is read by one of them, about every
// other one by the daemon that does not know the new follower.
const BEFORE = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 30s }
tasks:
  archive: { command: ["true"], overlap: allow }
  on-failure:
    after: { task: archive, status: [failed] }
    command: ["true"]
`;
const AFTER = `${BEFORE}
  rollup:
    after: { task: archive }
    overlap: allow
    command: [sh, -c, 'cat /runlet/payload.json > /runlet/output.json']
`;
const ROUNDS = 10;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let older: TestDaemon;
let newer: TestDaemon;
const olderConfig = configFrom(BEFORE);
beforeAll(async () => {
  redis = await startTestRedis();
  older = await startTestDaemon({ config: olderConfig, redisUrl: redis.url, node: 'node-before' });
  newer = await startTestDaemon({ config: configFrom(AFTER), redisUrl: redis.url, node: 'node-after' });
});
afterAll(async () => {
  await older?.stop();
  await newer?.stop();
  if (older) await removeClusterContainers(older.identity.clusterId);
  await redis?.stopAndClean();
});

/** Runs `archive` ROUNDS times, half of them submitted through each daemon, and waits for each to end succeeded. */
async function archiveRuns(tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < ROUNDS; i++)
    ids.push((await [older, newer][i % 2]!.submit({ task: 'archive', trigger: 'manual', dedupeKey: `archive:manual:${tag}-${i}` })).runId);
  for (const id of ids) expect((await newer.waitForEnd(id)).status).toBe('succeeded');
  return ids;
}

/** Each archive run's rollup, once each, ended. */
async function rollupsOf(ids: readonly string[]): Promise<RunRecord[]> {
  const byKey = await until(
    `a rollup for each of ${ids.length} archive runs`,
    async () => {
      const rollups = await newer.store.list({ task: 'rollup', limit: 1000 });
      const found = ids.map((id) => rollups.find((r) => r.dedupeKey === `rollup:after:${id}`));
      return found.every(Boolean) && (found as RunRecord[]);
    },
    60_000,
    200,
  );
  return Promise.all(byKey.map((r) => newer.waitForEnd(r.id)));
}

describe('daemons with different configs on one Redis (a rolling config change)', () => {
  it('the follower only the newer config has starts for every run, and only the daemon that knows it runs it', async () => {
    const ids = await archiveRuns('mixed');
    const rollups = await rollupsOf(ids);
    expect(rollups.map((r) => r.status)).toEqual(ids.map(() => 'succeeded'));
    // The older daemon never took (let alone failed) a run of a task its config lacks.
    expect(new Set(rollups.map((r) => r.node))).toEqual(new Set(['node-after']));
    expect((await newer.store.list({ task: 'rollup', limit: 1000 })).length).toBe(ROUNDS);
  }, 120_000);

  it('after the older daemon reloads the newer file, the two share the work and each follower still runs once', async () => {
    writeFileSync(olderConfig.file, AFTER);
    const changes = await older.reload();
    expect(changes.added).toEqual(['rollup']);
    const ids = await archiveRuns('reloaded');
    await rollupsOf(ids);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await newer.store.list({ task: 'rollup', limit: 1000 })).length).toBe(2 * ROUNDS);
  }, 120_000);
});
