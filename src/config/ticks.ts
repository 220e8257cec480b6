import type { TaskConfig } from './types.js';
import { cronOf } from './fire-times.js';

type Scheduled = Pick<TaskConfig, 'schedule' | 'timezone'>;

/**
 * The ticks of a schedule in (afterMs, untilMs], oldest first, at most `limit` of them;
 * `more` says the range held more. Used by catch-up (what was missed) and backfill (what to
 * run again), so both read a schedule exactly as the live timer does.
 */
export function ticksBetween(task: Scheduled, afterMs: number, untilMs: number, limit: number): { ticks: number[]; more: boolean } {
  if (!task.schedule) return { ticks: [], more: false };
  const cron = cronOf(task.schedule, task.timezone);
  const ticks: number[] = [];
  let cursor = new Date(afterMs);
  for (;;) {
    const next = cron.nextRun(cursor);
    if (!next || next.getTime() > untilMs) return { ticks, more: false };
    if (ticks.length === limit) return { ticks, more: true };
    ticks.push(next.getTime());
    cursor = next;
  }
}

/** The latest tick at or before `atMs`, if the schedule had one. */
export function latestTickAtOrBefore(task: Scheduled, atMs: number): number | undefined {
  if (!task.schedule) return undefined;
  const [prev] = cronOf(task.schedule, task.timezone).previousRuns(1, new Date(atMs + 1));
  return prev?.getTime();
}
