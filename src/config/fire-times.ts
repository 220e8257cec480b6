import { Cron } from 'croner';
import { CRON_MODE } from './schedule.js';
import type { TaskConfig } from './types.js';

/**
 * croner as runlet reads a schedule: 5 fields (minutes) or 6 (seconds first), or a
 * nickname like @hourly; day-of-month and day-of-week combine with OR, as in Vixie cron
 * and Kubernetes. Used for validation, for firing and for "next run" in one way only.
 */
export function cronOf(schedule: string, timezone: string): Cron {
  // One per distinct schedule and zone, shared: a paused Cron asked for the runs after a
  // given date keeps no state between calls, and a config of thousands of tasks mostly
  // repeats a few schedules (parsing one costs about as much as a Redis round trip).
  const key = `${timezone}\u0000${schedule}`;
  let cron = parsed.get(key);
  if (!cron) {
    if (parsed.size >= PARSED_MAX) parsed.clear();
    cron = new Cron(schedule, { timezone, paused: true, mode: CRON_MODE });
    parsed.set(key, cron);
  }
  return cron;
}

const parsed = new Map<string, Cron>();
/** Bounded, so a daemon reloading ever-new schedules does not keep every one it saw. */
const PARSED_MAX = 100_000;

/** The next `n` fire times of a task after `from`, as epoch ms ([] for unscheduled tasks). */
export function nextFireTimes(task: Pick<TaskConfig, 'schedule' | 'timezone'>, n: number, from = new Date()): number[] {
  if (!task.schedule) return [];
  return cronOf(task.schedule, task.timezone)
    .nextRuns(n, from)
    .map((d) => d.getTime());
}
