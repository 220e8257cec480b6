import { describe, expect, it } from 'vitest';
import { useDaemon } from './helpers/daemon.js';
import { utcDay, USAGE_DAY_TTL_S } from '../src/runs/daily-usage.js';

const ctx = useDaemon(`defaults: { image: runlet/busybox:local, timeout: 20s }
tasks:
  half: { memory: 512m, command: [sh, -c, 'echo working; sleep 0.3'] }
  big:  { memory: 1g, command: [sh, -c, 'echo never run here'] }
`);

const DAY = 86_400_000;
interface TaskUsage {
  runs: number;
  containerSeconds: number;
  gbSeconds: number;
  alwaysOnGbSeconds: number;
  warmIdleSeconds: number;
}
interface Report {
  days: { day: string; tasks: Record<string, TaskUsage> }[];
  totals: { all: TaskUsage; tasks: Record<string, TaskUsage> };
}

async function usage(days?: number): Promise<Report> {
  const res = await fetch(`${ctx.daemon.url}/api/usage${days === undefined ? '' : `?days=${days}`}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Report;
}

describe('GET /api/usage', () => {
  it('adds each run to its task and UTC day, and compares it with an always-on worker', async () => {
    const before = await usage(3);
    expect(before.days.map((d) => d.day)).toEqual([utcDay(Date.now() - 2 * DAY), utcDay(Date.now() - DAY), utcDay(Date.now())]);
    expect(before.days[2]!.tasks.half?.runs ?? 0).toBe(0);

    for (const key of ['a', 'b']) {
      const { runId } = await ctx.daemon.submit({ task: 'half', trigger: 'manual', dedupeKey: `half:manual:${key}` });
      await ctx.daemon.waitForEnd(runId);
    }
    const startOfDay = Math.floor(Date.now() / DAY) * DAY;
    const after = await usage(3);
    const today = after.days[2]!.tasks;
    expect(today.half!.runs).toBe(2);
    expect(today.half!.containerSeconds).toBeGreaterThan(0.5);
    // 512 MiB is half a GiB.
    expect(today.half!.gbSeconds).toBeCloseTo(today.half!.containerSeconds / 2, 2);
    // Always on since midnight UTC: half a GiB for every second of today so far.
    const elapsed = (Date.now() - startOfDay) / 1000;
    expect(today.half!.alwaysOnGbSeconds).toBeGreaterThan(0.5 * (elapsed - 30));
    expect(today.half!.alwaysOnGbSeconds).toBeLessThanOrEqual(0.5 * elapsed + 0.01);
    expect(today.big).toMatchObject({ runs: 0, containerSeconds: 0, gbSeconds: 0 });
    expect(today.big!.alwaysOnGbSeconds).toBeCloseTo(2 * today.half!.alwaysOnGbSeconds, -1);
    // The tasks were first configured today: no always-on figure for the days before.
    expect(after.days[1]!.tasks).toEqual({});
    expect(after.totals.tasks.half!.runs).toBe(2);
    expect(after.totals.all.runs).toBe(2);

    const ttl = await ctx.daemon.redis.ttl(`runlet:usage:${utcDay(Date.now())}`);
    expect(ttl).toBeGreaterThan(USAGE_DAY_TTL_S - 60);
  });

  it('sums past days into the totals; a full past day of always-on is limit × 86400', async () => {
    const yesterday = utcDay(Date.now() - DAY);
    await ctx.daemon.redis.hset('runlet:usage:since', 'half', utcDay(Date.now() - 5 * DAY));
    await ctx.daemon.redis.hset(
      `runlet:usage:${yesterday}`,
      'half:cs',
      '120',
      'half:gbs',
      '60',
      'half:runs',
      '3',
      // A warm instance's idle time (runs/daily-usage.ts addWarmIdle), reported apart.
      'half:wis',
      '30',
      'half:mem',
      String(512 * 2 ** 20),
    );
    const r = await usage(2);
    expect(r.days).toHaveLength(2);
    expect(r.days[0]).toEqual({
      day: yesterday,
      tasks: { half: { runs: 3, containerSeconds: 120, gbSeconds: 60, alwaysOnGbSeconds: 43200, warmIdleSeconds: 30 } },
    });
    const today = r.days[1]!.tasks.half!;
    expect(r.totals.tasks.half).toEqual({
      runs: 3 + today.runs,
      containerSeconds: expect.closeTo(120 + today.containerSeconds, 2),
      gbSeconds: expect.closeTo(60 + today.gbSeconds, 2),
      alwaysOnGbSeconds: expect.closeTo(43200 + today.alwaysOnGbSeconds, 2),
      warmIdleSeconds: expect.closeTo(30 + today.warmIdleSeconds, 2),
    });
    // Default 30 days, oldest first.
    const month = await usage();
    expect(month.days).toHaveLength(30);
    expect(month.days[29]!.day).toBe(utcDay(Date.now()));
  });

  it('refuses a days value it does not keep', async () => {
    for (const bad of ['0', '401', 'x', '1.5']) {
      const res = await fetch(`${ctx.daemon.url}/api/usage?days=${bad}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_QUERY');
    }
  });
});
