import type { TaskConfig } from '../config/types.js';
import type { RunRequest } from '../runs/types.js';
import { ticksBetween } from '../config/ticks.js';

/** A backfill is for people fixing an outage; a range this large is more likely a typo. */
export const BACKFILL_MAX_TICKS = 1000;

export class BackfillRangeError extends Error {}

export interface BackfillResult {
  ticks: number;
  /** Runs this backfill created, one per tick that had none. */
  created: string[];
  /** Ticks that already had a run (by their dedupe key): not run again. */
  existing: string[];
}

/**
 * Queues the ticks of a past range, oldest first, each through its own dedupe key
 * `<task>:cron:<tickMs>`: a tick that already ran (live, caught up, or backfilled before)
 * is not run again, so repeating a backfill is harmless. Dedupe keys live 7 days; for older
 * ticks the run history is what tells whether they ran.
 */
export async function backfill(
  submit: (request: RunRequest) => Promise<{ runId: string; created: boolean }>,
  task: TaskConfig,
  fromMs: number,
  toMs: number,
  nowMs: number,
): Promise<BackfillResult> {
  if (!task.schedule) throw new BackfillRangeError(`task "${task.name}" has no schedule, so it has no ticks to backfill`);
  if (!(fromMs <= toMs)) throw new BackfillRangeError('from must not be after to');
  if (toMs > nowMs)
    throw new BackfillRangeError(`to (${new Date(toMs).toISOString()}) is in the future: backfill only runs ticks that have passed`);
  const { ticks, more } = ticksBetween(task, fromMs - 1, toMs, BACKFILL_MAX_TICKS);
  if (more)
    throw new BackfillRangeError(
      `the range holds more than ${BACKFILL_MAX_TICKS} ticks of "${task.schedule}"; split it into smaller ranges`,
    );
  const result: BackfillResult = { ticks: ticks.length, created: [], existing: [] };
  // One at a time, oldest first: a failure part-way leaves a prefix done, and re-running
  // the same backfill completes it without repeating that prefix.
  for (const tick of ticks) {
    const { runId, created } = await submit({
      task: task.name,
      trigger: 'cron',
      dedupeKey: `${task.name}:cron:${tick}`,
      scheduledAt: tick,
      backfill: true,
    });
    (created ? result.created : result.existing).push(runId);
  }
  return result;
}
