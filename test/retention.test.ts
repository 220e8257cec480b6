import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';
import type { RunRequest } from '../src/runs/types.js';

const YAML = `defaults: { image: runlet/busybox:local, memory: 16m, timeout: 20s }
retention: { runs: 100, maxAge: 1h }
tasks:
  busy: { command: [sh, -c, 'echo busy'] }
  idle: { command: [sh, -c, 'echo idle'] }
`;
const HOUR = 3600_000;
let n = 0;
const request = (task: string): RunRequest => ({ task, trigger: 'manual', dedupeKey: `${task}:manual:seed-${n++}` });

describe('retention.maxAge', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let d: TestDaemon;
  beforeAll(async () => {
    redis = await startTestRedis();
    d = await startTestDaemon({ config: configFrom(YAML), redisUrl: redis.url });
  });
  afterAll(async () => {
    await d?.stop();
    if (d) await removeClusterContainers(d.identity.clusterId);
    await redis?.stopAndClean();
  });

  it('parses durations like 30d, refuses less than a minute, and defaults to none', () => {
    expect(configFrom(YAML).retention).toEqual({ runsPerTask: 100, maxAgeMs: HOUR });
    expect(configFrom(YAML.replace('maxAge: 1h', 'maxAge: 30d')).retention.maxAgeMs).toBe(30 * 24 * HOUR);
    expect(configFrom(YAML.replace('retention: { runs: 100, maxAge: 1h }\n', '')).retention).toEqual({ runsPerTask: 100 });
    expect(() => configFrom(YAML.replace('maxAge: 1h', 'maxAge: 10s'))).toThrow(/retention\.maxAge.*at least 1m/s);
  });

  it("when a run ends, its task's ended runs older than maxAge go, in-progress ones stay", async () => {
    const old = Date.now() - 2 * HOUR;
    const ended = await d.store.create(request('busy'), { status: 'skipped', reason: 'seeded', now: old });
    const going = await d.store.create(request('busy'), { now: old });
    await d.store.confirmQueued(going.runId);
    await d.store.transition(going.runId, 'running', { from: ['queued'] });
    const recent = await d.store.create(request('busy'), { status: 'skipped', reason: 'seeded', now: Date.now() - HOUR / 2 });

    const { runId } = await d.submit({ task: 'busy', trigger: 'manual', dedupeKey: 'busy:manual:now' });
    await d.waitForEnd(runId);
    // Trimmed in finish(), just after the outcome is recorded.
    for (let i = 0; i < 40 && (await d.store.get(ended.runId)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await d.store.get(ended.runId)).toBeUndefined();
    expect(await d.redis.zscore('runlet:runs', ended.runId)).toBeNull();
    expect(await d.redis.exists(`runlet:run:${ended.runId}:transitions`)).toBe(0);
    expect((await d.store.get(going.runId))?.status).toBe('running');
    expect(await d.store.get(recent.runId)).toBeDefined();
    expect(await d.store.get(runId)).toBeDefined();
    await d.store.transition(going.runId, 'cancelled', { from: '*' });
  });

  it('a task that never runs again, or left the config, still ages out (the periodic sweep)', async () => {
    const old = Date.now() - 3 * HOUR;
    const idle = await d.store.create(request('idle'), { status: 'skipped', reason: 'seeded', now: old });
    const gone = await d.store.create(request('removed-task'), { status: 'skipped', reason: 'seeded', now: old });
    const fresh = await d.store.create(request('idle'), { status: 'skipped', reason: 'seeded' });
    // A second daemon sweeping every 200 ms (the first sweeps every 10 min).
    const sweeper = await startTestDaemon({ config: configFrom(YAML), redisUrl: redis.url, node: 'sweeper', retentionSweepMs: 200 });
    try {
      for (let i = 0; i < 50 && ((await d.store.get(idle.runId)) || (await d.store.get(gone.runId))); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(await d.store.get(idle.runId)).toBeUndefined();
      expect(await d.store.get(gone.runId)).toBeUndefined();
      expect(await d.redis.zscore('runlet:task:idle:runs', idle.runId)).toBeNull();
      expect(await d.redis.zscore('runlet:task:removed-task:runs', gone.runId)).toBeNull();
      expect(await d.store.get(fresh.runId)).toBeDefined();
    } finally {
      await sweeper.stop();
    }
  });

  it('store.trim without maxAge keeps by count only', async () => {
    const old = await d.store.create(request('idle'), { status: 'skipped', reason: 'seeded', now: Date.now() - 5 * HOUR });
    expect(await d.store.trim('idle', 100)).toBe(0);
    expect(await d.store.get(old.runId)).toBeDefined();
    expect(await d.store.trim('idle', 100, HOUR)).toBe(1);
    expect(await d.store.get(old.runId)).toBeUndefined();
  });
});
