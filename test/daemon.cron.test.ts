import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/runs/types.js';
import { configFrom, removeClusterContainers, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { startTestRedis } from './helpers/redis.js';

// Two daemons (two nodes) on one Redis, both running the same per-second schedule: every
// tick must become exactly one run.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 10s }
tasks:
  every-second:
    schedule: "* * * * * *"
    command: [sh, -c, "echo tick $RUNLET_SCHEDULED_AT"]
`;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
const daemons: TestDaemon[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  const config = configFrom(CONFIG);
  daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node: 'node-a' }));
  daemons.push(await startTestDaemon({ config, redisUrl: redis.url, node: 'node-b' }));
});
afterAll(async () => {
  for (const d of daemons) await d.stop();
  if (daemons[0]) await removeClusterContainers(daemons[0].identity.clusterId);
  await redis?.stopAndClean();
});

describe('cron', () => {
  it('fires a per-second schedule, each tick once across two daemons, visible in /api/runs', async () => {
    const [a, b] = daemons;
    // Each daemon reports only the runs it created itself.
    const createdBy = { a: [] as string[], b: [] as string[] };
    a.events.on('run:queued', (e) => createdBy.a.push(e.runId));
    b.events.on('run:queued', (e) => createdBy.b.push(e.runId));
    // Wait until at least 4 distinct ticks have finished running.
    const finished = new Set<string>();
    await new Promise<void>((resolve) => {
      const onEnd = (e: { runId: string }) => {
        finished.add(e.runId);
        if (finished.size >= 4) resolve();
      };
      a.events.on('run:finished', onEnd);
      b.events.on('run:finished', onEnd);
    });

    const res = await fetch(`${a.url}/api/runs?task=every-second&limit=100`);
    expect(res.status).toBe(200);
    const { runs } = (await res.json()) as { runs: Array<Pick<RunRecord, 'id' | 'status' | 'trigger'> & { scheduledAt: string }> };
    expect(runs.length).toBeGreaterThanOrEqual(4);
    expect(runs.every((r) => r.trigger === 'cron')).toBe(true);
    // One run per scheduled second, never two.
    const perTick = new Map<string, number>();
    for (const r of runs) perTick.set(r.scheduledAt, (perTick.get(r.scheduledAt) ?? 0) + 1);
    expect([...perTick.values()].every((n) => n === 1)).toBe(true);
    // Ticks are whole seconds.
    expect(runs.every((r) => new Date(r.scheduledAt).getUTCMilliseconds() === 0)).toBe(true);
    // Both daemons fired every tick, yet no run was created by both.
    const both = createdBy.a.filter((id) => createdBy.b.includes(id));
    expect(both).toEqual([]);
    const done = runs.filter((r) => r.status === 'succeeded');
    expect(done.length).toBeGreaterThanOrEqual(4);
  });

  it('/api/tasks shows the schedule and the next fire time', async () => {
    const res = await fetch(`${daemons[0].url}/api/tasks`);
    const { tasks } = (await res.json()) as { tasks: Array<{ name: string; triggers: unknown[]; nextRunAt: string; lastRun: unknown }> };
    const t = tasks.find((x) => x.name === 'every-second')!;
    expect(t.triggers).toContainEqual({ type: 'cron', schedule: '* * * * * *', timezone: 'UTC' });
    expect(Date.parse(t.nextRunAt) - Date.now()).toBeLessThanOrEqual(1000);
    expect(t.lastRun).not.toBeNull();
  });
});
