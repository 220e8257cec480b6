import { Cron } from 'croner';
import { CRON_MODE } from './schedule.js';
import type { TaskConfig } from './types.js';

/**
 * croner as runlet reads a schedule: 5 fields (minutes) or 6 (seconds first), or a
 * nickname like @hourly; day-of-month and day-of-week combine with OR, as in Vixie cron
 * and Kubernetes. Used for validation, for firing and for "next run" in one way only.
 */
export function cronOf(schedule: string, timezone: string): Cron {
  return new Cron(schedule, { timezone, paused: true, mode: CRON_MODE });
}

/** The next `n` fire times of a task after `from`, as epoch ms ([] for unscheduled tasks). */
export function nextFireTimes(task: Pick<TaskConfig, 'schedule' | 'timezone'>, n: number, from = new Date()): number[] {
  if (!task.schedule) return [];
  return cronOf(task.schedule, task.timezone)
    .nextRuns(n, from)
    .map((d) => d.getTime());
}
