import type { TaskConfig } from '../config/types.js';
import type { RunRequest } from '../runs/types.js';
import type { PauseState } from './pause.js';

/**
 * Rules a run request passes before it is queued. Each says why the request must be
 * recorded as `skipped` instead, or nothing to let it through; the first reason wins. A
 * skip is never silent: the caller records a `skipped` run with the reason.
 */
export type Policy = (request: RunRequest, task: TaskConfig) => Promise<string | undefined>;

/**
 * Suspension holds for what the schedule does on its own (ticks and catch-up), like
 * Kubernetes' `suspend`. A person's explicit request — a manual run or a backfill — still runs.
 */
export function suspendedPolicy(pauses: PauseState): Policy {
  return async (request, task) => {
    if (request.trigger !== 'cron' || request.backfill) return undefined;
    if (task.suspended) return 'task is suspended in the config (suspended: true)';
    if (await pauses.isPaused(task.name)) return 'task is paused (runlet resume ' + task.name + ' to resume)';
    return undefined;
  };
}

export interface QueueCounts {
  /** Runs of the task holding a cluster-wide slot (taken by a worker, starting or running). */
  active: number;
  /** Runs of the task waiting in its queue (including delayed ones). */
  waiting: number;
}

/**
 * The task's overlap policy, when it is at its concurrency limit (Kubernetes CronJob's
 * concurrencyPolicy, Temporal's overlap policies). It governs what triggers fire on their
 * own; a person's manual run or backfill always queues, as they asked for that run.
 *
 * The counts are read when the request arrives, so two requests in the same instant may
 * both pass a `skip` check; the limit itself (never more than `concurrency` running) is
 * enforced atomically by the queue and cannot be passed.
 */
export interface CountsSource {
  /** The exact counts (reads the slot holders' records). */
  counts(task: string): Promise<QueueCounts>;
  /** Upper bounds of both counts, cheaper (gate.ts upperCounts). */
  upperCounts(task: string): Promise<QueueCounts>;
}

export function overlapPolicy(source: CountsSource, replaceOldest: (task: string) => Promise<void>): Policy {
  return async (request, task) => {
    if (request.trigger === 'manual' || request.backfill || task.overlap === 'allow') return undefined;
    // Every verdict below only refuses (or replaces) on counts that are high enough, so counts
    // that pass as upper bounds pass exactly: the exact read is needed only near the limit.
    const upper = await source.upperCounts(task.name);
    if (overlapVerdict(task, upper) === undefined) return undefined;
    const verdict = overlapVerdict(task, await source.counts(task.name));
    if (verdict === 'replace') {
      await replaceOldest(task.name);
      return undefined;
    }
    return verdict;
  };
}

/** What the overlap policy says on these counts: a skip reason, 'replace', or nothing. */
function overlapVerdict(task: TaskConfig, { active, waiting }: QueueCounts): string | undefined {
  const atLimit = active >= task.concurrency;
  switch (task.overlap) {
    case 'queue':
      return waiting >= task.maxQueued ? `queue full: ${waiting} run(s) already waiting (maxQueued: ${task.maxQueued})` : undefined;
    case 'bufferOne':
      return atLimit && waiting >= 1 ? `overlap bufferOne: ${active} run(s) running and one already waiting` : undefined;
    case 'skip':
      return atLimit ? `overlap skip: ${active} run(s) already running (concurrency: ${task.concurrency})` : undefined;
    case 'replace':
      return atLimit ? 'replace' : undefined;
    default:
      return undefined;
  }
}

export async function firstSkipReason(policies: readonly Policy[], request: RunRequest, task: TaskConfig): Promise<string | undefined> {
  for (const policy of policies) {
    const reason = await policy(request, task);
    if (reason) return reason;
  }
  return undefined;
}
