import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../src/runs/store.js';
import type { RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// Overlap policies, observed from run records: per-second ticks of tasks that run longer
// than a second, each task at concurrency 1.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 60s, killGrace: 1s }
tasks:
  skipper:  { schedule: "* * * * * *", overlap: skip, command: [sleep, "2.5"] }
  buffered: { schedule: "* * * * * *", overlap: bufferOne, command: [sleep, "2.5"] }
  bounded:  { schedule: "* * * * * *", overlap: queue, maxQueued: 1, command: [sleep, "2.5"] }
  replacer: { schedule: "*/2 * * * * *", overlap: replace, command: [sleep, "30"] }
  allowed:  { schedule: "* * * * * *", overlap: allow, concurrency: 1, command: [sleep, "2.5"] }
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let daemon: TestDaemon;
const maxQueued: Record<string, number> = {};
const maxRunning: Record<string, number> = {};
let runsByTask: Record<string, RunRecord[]> = {};

beforeAll(async () => {
  redis = await startTestRedis();
  daemon = await startTestDaemon({ config: configFrom(CONFIG), redisUrl: redis.url, shutdownGraceMs: 200 });
  // Watch for 6 seconds, sampling what waits and what runs; longer (up to 40 s) until the
  // replacer has been replaced once: on a loaded machine its first run may still be waiting
  // for a worker at the next tick, and a run that has not started is not replaced.
  const started = Date.now();
  const replaced = async () => (await daemon.store.list({ task: 'replacer', status: ['cancelled'], limit: 1 })).length > 0;
  while (Date.now() < started + 6_000 || (Date.now() < started + 40_000 && !(await replaced()))) {
    const live = await daemon.store.list({ status: ['queued', 'starting', 'running'], limit: 1000 });
    for (const task of ['skipper', 'buffered', 'bounded', 'replacer', 'allowed']) {
      const mine = live.filter((r) => r.task === task);
      maxQueued[task] = Math.max(maxQueued[task] ?? 0, mine.filter((r) => r.status === 'queued').length);
      maxRunning[task] = Math.max(maxRunning[task] ?? 0, mine.filter((r) => r.status !== 'queued').length);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await daemon.stop();
  const reader = new Redis({ path: redis.path });
  const all = await new RunStore(reader).list({ limit: 1000 });
  reader.disconnect();
  runsByTask = {};
  for (const r of all) (runsByTask[r.task] ??= []).push(r);
}, 60_000);
afterAll(async () => {
  if (daemon) await removeClusterContainers(daemon.identity.clusterId);
  await redis?.stopAndClean();
});

const skipped = (task: string) => (runsByTask[task] ?? []).filter((r) => r.status === 'skipped');

describe('overlap policies', () => {
  it('skip: a tick while a run is running is recorded as skipped, with the reason', () => {
    expect(skipped('skipper').length).toBeGreaterThanOrEqual(2);
    expect(skipped('skipper')[0].reason).toBe('overlap skip: 1 run(s) already running (concurrency: 1)');
    // Never two at once (a new tick may be queued for an instant right after one ended).
    expect(maxRunning.skipper).toBe(1);
  });

  it('bufferOne: at most one run waits; the rest are skipped', () => {
    expect(maxQueued.buffered).toBe(1);
    expect(maxRunning.buffered).toBe(1);
    expect(skipped('buffered').length).toBeGreaterThanOrEqual(1);
    expect(skipped('buffered')[0].reason).toBe('overlap bufferOne: 1 run(s) running and one already waiting');
  });

  it('queue: waits up to maxQueued, beyond it new runs are skipped', () => {
    expect(maxQueued.bounded).toBe(1);
    expect(skipped('bounded')[0]?.reason).toBe('queue full: 1 run(s) already waiting (maxQueued: 1)');
  });

  it('replace: a new tick cancels the running run (SIGTERM) and starts', () => {
    const cancelled = (runsByTask.replacer ?? []).filter((r) => r.status === 'cancelled');
    expect(cancelled.length).toBeGreaterThanOrEqual(1);
    expect(cancelled[0].reason).toMatch(/^cancelled \(replaced by a newer run \(overlap: replace\)\); stopped with SIGTERM$/);
    expect(skipped('replacer')).toEqual([]);
  });

  it('allow: the task limit does not hold back overlapping runs', () => {
    expect(maxRunning.allowed).toBeGreaterThanOrEqual(2);
    expect(skipped('allowed')).toEqual([]);
  });
});
