import type { Redis } from 'ioredis';
import type { TaskConfig } from '../config/types.js';
import { keys } from './keys.js';
import type { Usage } from './types.js';

/** Daily totals outlive run records (retention) so a year can be charted: ~400 days. */
export const USAGE_DAY_TTL_S = 400 * 86_400;
const DAY_MS = 86_400_000;
const GIB = 2 ** 30;

/** The UTC day of an epoch-ms time, as YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Adds one ended attempt to its UTC day: container-seconds and GB-seconds always, and one
 * run when it was the run's last attempt. The day is the one the attempt ended in (a run
 * across midnight counts on the second day). Also notes the task's memory limit that day,
 * for the always-on comparison. Called once per attempt, by whoever recorded its end.
 */
export async function addDailyUsage(redis: Redis, task: TaskConfig, usage: Usage, endedRun: boolean, at: number): Promise<void> {
  const key = keys.usageDay(utcDay(at));
  const tx = redis.multi();
  if (usage.containerSeconds > 0) tx.hincrbyfloat(key, `${task.name}:cs`, usage.containerSeconds);
  if (usage.gbSeconds > 0) tx.hincrbyfloat(key, `${task.name}:gbs`, usage.gbSeconds);
  if (endedRun) tx.hincrby(key, `${task.name}:runs`, 1);
  tx.hset(key, `${task.name}:mem`, String(task.memoryBytes));
  tx.expire(key, USAGE_DAY_TTL_S);
  await tx.exec();
}

/**
 * Adds a warm or reusable instance's idle container time to its UTC day (`warmIdleSeconds`):
 * reported apart from the runs' container-seconds, as the price of their latency.
 */
export async function addWarmIdle(redis: Redis, task: string, idleMs: number, at: number): Promise<void> {
  if (idleMs <= 0) return;
  const key = keys.usageDay(utcDay(at));
  await redis
    .multi()
    .hincrbyfloat(key, `${task}:wis`, idleMs / 1000)
    .expire(key, USAGE_DAY_TTL_S)
    .exec();
}

/** Notes the first day each task was configured on a running daemon; later starts keep it. */
export async function noteTasks(redis: Redis, tasks: readonly TaskConfig[], now = Date.now()): Promise<void> {
  if (tasks.length === 0) return;
  const tx = redis.multi();
  for (const t of tasks) tx.hsetnx(keys.usageSince(), t.name, utcDay(now));
  await tx.exec();
}

export interface TaskDayUsage {
  runs: number;
  containerSeconds: number;
  gbSeconds: number;
  /**
   * What an always-on worker with the task's memory limit would have reserved that day:
   * limit in GiB × the seconds of the day (only those passed, today), from the day the task
   * was first configured.
   */
  alwaysOnGbSeconds: number;
  /** Container-seconds of warm and reusable instances with no run in them (apart from containerSeconds). */
  warmIdleSeconds: number;
}

export interface UsageReport {
  days: { day: string; tasks: Record<string, TaskDayUsage> }[];
  totals: { all: TaskDayUsage; tasks: Record<string, TaskDayUsage> };
}

const round = (n: number) => Math.round(n * 1000) / 1000;
const zero = (): TaskDayUsage => ({ runs: 0, containerSeconds: 0, gbSeconds: 0, alwaysOnGbSeconds: 0, warmIdleSeconds: 0 });

/**
 * The last `days` UTC days, oldest first, today included. Tasks shown: the configured ones,
 * plus any with usage on record (a task since removed: its always-on figure uses the memory
 * limit recorded with its runs that day).
 */
export async function usageReport(
  redis: Redis,
  tasks: Readonly<Record<string, TaskConfig>>,
  days: number,
  now = Date.now(),
): Promise<UsageReport> {
  const todayStart = Math.floor(now / DAY_MS) * DAY_MS;
  const dayList = Array.from({ length: days }, (_, i) => utcDay(todayStart - (days - 1 - i) * DAY_MS));
  const pipe = redis.pipeline();
  for (const d of dayList) pipe.hgetall(keys.usageDay(d));
  pipe.hgetall(keys.usageSince());
  const res = (await pipe.exec()) ?? [];
  const since = (res[dayList.length]?.[1] as Record<string, string> | undefined) ?? {};
  const totals: UsageReport['totals'] = { all: zero(), tasks: {} };
  const report: UsageReport = { days: [], totals };
  dayList.forEach((day, i) => {
    const hash = (res[i]?.[1] as Record<string, string> | undefined) ?? {};
    const names = new Set(Object.keys(tasks));
    for (const field of Object.keys(hash)) names.add(field.slice(0, field.lastIndexOf(':')));
    const daySeconds = day === utcDay(now) ? (now - todayStart) / 1000 : 86_400;
    const perTask: Record<string, TaskDayUsage> = {};
    for (const name of [...names].sort()) {
      const num = (k: string) => Number(hash[`${name}:${k}`] ?? 0);
      const memoryBytes = num('mem') || tasks[name]?.memoryBytes || 0;
      const existed = hash[`${name}:mem`] !== undefined || (since[name] !== undefined && since[name] <= day);
      const u: TaskDayUsage = {
        runs: num('runs'),
        containerSeconds: round(num('cs')),
        gbSeconds: round(num('gbs')),
        alwaysOnGbSeconds: existed ? round((memoryBytes / GIB) * daySeconds) : 0,
        warmIdleSeconds: round(num('wis')),
      };
      if (u.runs === 0 && u.containerSeconds === 0 && u.alwaysOnGbSeconds === 0 && u.warmIdleSeconds === 0) continue;
      perTask[name] = u;
      const t = (totals.tasks[name] ??= zero());
      for (const k of ['runs', 'containerSeconds', 'gbSeconds', 'alwaysOnGbSeconds', 'warmIdleSeconds'] as const) {
        t[k] = round(t[k] + u[k]);
        totals.all[k] = round(totals.all[k] + u[k]);
      }
    }
    report.days.push({ day, tasks: perTask });
  });
  return report;
}
