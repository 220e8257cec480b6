import { describe, expect, it } from 'vitest';
import { useDaemon } from './helpers/daemon.js';
import { runCli } from './helpers/process.js';

// Backfill runs the ticks of a past range once each, through the ticks' own dedupe keys.
const CONFIG = `
defaults: { image: runlet/busybox:local, memory: 16m, timeout: 10s }
tasks:
  hourly: { schedule: "0 * * * *", command: [sh, -c, 'echo "for $RUNLET_SCHEDULED_AT"'] }
  adhoc:  { command: [echo, no schedule] }
`;
const HOUR = 3_600_000;

const ctx = useDaemon(CONFIG);

const backfill = (task: string, body: unknown) =>
  fetch(`${ctx.daemon.url}/api/tasks/${task}/backfill`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('backfill', () => {
  it('runs 5 past ticks once each, with their scheduled times; repeated, it runs none', async () => {
    const lastHour = Math.floor(Date.now() / HOUR) * HOUR;
    const range = { from: new Date(lastHour - 4 * HOUR).toISOString(), to: new Date(lastHour).toISOString() };
    const first = await backfill('hourly', range);
    expect(first.status).toBe(202);
    const res = (await first.json()) as { ticks: number; created: string[]; existing: string[] };
    expect(res).toMatchObject({ ticks: 5, existing: [] });
    expect(res.created).toHaveLength(5);
    const runs = await Promise.all(res.created.map((id) => ctx.daemon.waitForEnd(id)));
    const expected = [4, 3, 2, 1, 0].map((h) => new Date(lastHour - h * HOUR).toISOString());
    expect(runs.map((r) => new Date(r.scheduledAt!).toISOString())).toEqual(expected);
    expect(runs.every((r) => r.status === 'succeeded' && r.backfill === true && r.trigger === 'cron')).toBe(true);
    expect(runs.map((r) => r.logTail?.trim())).toEqual(expected.map((t) => `for ${t}`));

    const again = (await (await backfill('hourly', range)).json()) as { ticks: number; created: string[]; existing: string[] };
    expect(again).toEqual({ task: 'hourly', ticks: 5, created: [], existing: res.created });
  });

  it('refuses ranges it will not run, with the reason', async () => {
    const now = Date.now();
    const errorOf = async (task: string, body: unknown) => {
      const r = await backfill(task, body);
      return [r.status, ((await r.json()) as { error: { message: string } }).error.message];
    };
    expect(await errorOf('hourly', { from: 'yesterday', to: new Date(now).toISOString() })).toEqual([
      400,
      'from must be a time like "2026-11-20T03:00:00Z" (or epoch milliseconds), got "yesterday"',
    ]);
    expect((await errorOf('hourly', { from: now - HOUR, to: now + 2 * HOUR }))[1]).toMatch(/is in the future/);
    expect((await errorOf('hourly', { from: now - 2000 * HOUR, to: now }))[1]).toMatch(/more than 1000 ticks/);
    expect(await errorOf('adhoc', { from: now - HOUR, to: now })).toEqual([
      400,
      'task "adhoc" has no schedule, so it has no ticks to backfill',
    ]);
  });

  it('works from the CLI too', async () => {
    const lastHour = Math.floor(Date.now() / HOUR) * HOUR;
    const port = new URL(ctx.daemon.url).port;
    const out = await runCli(
      ['backfill', 'hourly', '--from', new Date(lastHour - 6 * HOUR).toISOString(), '--to', new Date(lastHour - 5 * HOUR).toISOString()],
      { RUNLET_PORT: port },
    );
    expect(out.stderr).toBe('');
    expect(out.stdout).toMatch(/^2 tick\(s\) in range: 2 queued, 0 already had a run/);
    expect(out.code).toBe(0);
  });
});
