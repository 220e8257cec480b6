import { newRunId } from '../runs/store.js';
import type { RunRecord, RunRequest } from '../runs/types.js';

/**
 * A run asked for by a person (API, CLI, dashboard). Each request is its own event, so
 * its dedupe key is fresh; the payload is whatever JSON they sent.
 */
export function manualRequest(task: string, payload: unknown, idempotencyKey?: string): RunRequest {
  // With an Idempotency-Key (as in Stripe's API), a client retrying after a lost answer
  // gets the first run back instead of a second run.
  const dedupeKey = idempotencyKey ? `${task}:manual:key:${idempotencyKey}` : `${task}:manual:${newRunId()}`;
  return { task, trigger: 'manual', dedupeKey, payload, ...(idempotencyKey && { cause: `Idempotency-Key ${idempotencyKey}` }) };
}

/**
 * A person asked to run an ended run again (`runlet retry`): a new manual run with the old
 * one's payload and, for a cron run, its tick (RUNLET_SCHEDULED_AT), so the program sees
 * the same inputs. The new record's `retryOf` names the old run.
 */
export function retryRequest(run: RunRecord): RunRequest {
  return {
    ...manualRequest(run.task, run.payload),
    ...(run.scheduledAt !== undefined && { scheduledAt: run.scheduledAt }),
    // A webhook body kept as sent stays so, with the headers the task read.
    ...(run.contentType !== undefined && { contentType: run.contentType }),
    ...(run.headers !== undefined && { headers: run.headers }),
    retryOf: run.id,
  };
}
