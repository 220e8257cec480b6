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

export async function firstSkipReason(policies: readonly Policy[], request: RunRequest, task: TaskConfig): Promise<string | undefined> {
  for (const policy of policies) {
    const reason = await policy(request, task);
    if (reason) return reason;
  }
  return undefined;
}
