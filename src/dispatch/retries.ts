import type { Logger } from 'pino';
import type { RetryPolicy, TaskConfig } from '../config/types.js';
import type { RunletEvents } from '../runs/events.js';
import { formatDuration } from '../lib/format.js';
import type { AttemptLeft, RunStore } from '../runs/store.js';
import { currentAttempt, MOVES, type AttemptEndStatus, type AttemptRecord, type RunStatus, type Usage } from '../runs/types.js';
import { addUsage } from '../runs/usage.js';
import { jobIdFor, type PoolQueues } from './queues.js';

/**
 * Retries: when an attempt of a run ends, either the run goes back to `queued` for its next
 * attempt (same run id, same record, a delayed queue job), or the attempt's outcome is the
 * run's. Called from finish() (run-job.ts) for every attempt that ends.
 */

/**
 * Outcomes worth another attempt. `cancelled` was a person's (or an overlap rule's) decision,
 * `skipped` never ran, `succeeded` needs nothing: those are never retried.
 */
export const RETRIED_STATUSES: readonly RunStatus[] = ['failed', 'timed_out', 'oom_killed', 'lost'];

/**
 * Each wait is up to this fraction shorter, at random (BullMQ's `jitter` works the same way),
 * so runs that failed together — a database went down — don't all come back at once.
 * Only ever shorter, so a wait never exceeds `maxDelay` and later waits stay longer.
 */
export const RETRY_JITTER = 0.2;

/** The wait after attempt `failedAttempt` (1-based) failed, in ms. */
export function retryDelayMs(policy: RetryPolicy, failedAttempt: number, random: () => number = Math.random): number {
  const full = policy.backoff === 'fixed' ? policy.delayMs : policy.delayMs * 2 ** (failedAttempt - 1);
  return Math.round(Math.min(full, policy.maxDelayMs) * (1 - RETRY_JITTER * random()));
}

export interface RetryDeps {
  readonly store: RunStore;
  readonly queues: PoolQueues;
  readonly events: RunletEvents;
  readonly logger: Logger;
}

/** How one attempt ended. */
export interface AttemptEnd {
  /**
   * The attempt that ended, when the caller knows it (a container's attempt label,
   * LABEL_ATTEMPT). Without it, the run's current attempt is meant: right for the process
   * that ran the attempt, as nothing else moves the run on while it runs.
   */
  readonly attempt?: number;
  /**
   * The claim the writer holds on that attempt (its claimant's or adopter's token), or, for
   * a daemon declaring a dead holder's attempt lost, the claim it read and judged dead: the
   * end is refused once another daemon holds the claim. Absent: the attempt alone fences.
   */
  readonly claim?: string;
  /**
   * The next attempt starts no earlier than this (epoch ms): a lost attempt whose container
   * may still run on a host nobody reaches is retried only after that container's deadline.
   */
  readonly notBefore?: number;
  /**
   * The attempt's container is known never to have started (its daemon died between the
   * claim and the start, on this node): nothing of it ran, so it does not count against the
   * task's attempts, and the run gets its next attempt even with no retries configured.
   */
  readonly neverStarted?: boolean;
  /** One of MOVES.endAttempt.to. */
  readonly status: AttemptEndStatus;
  readonly exitCode?: number;
  readonly reason?: string;
  readonly startedAt?: number;
  readonly finishedAt: number;
  /** This attempt's usage; the record keeps the sum over the run's attempts. */
  readonly usage: Usage;
  /**
   * Its log tail and output, written with the end behind the same attempt fence; absent
   * when the attempt left none to record (lost), and the record keeps what it has.
   */
  readonly left?: AttemptLeft;
}

export type AttemptOutcome =
  | { readonly kind: 'retrying'; readonly nextAttempt: number; readonly delayMs: number }
  | { readonly kind: 'ended'; readonly status: RunStatus; readonly dead: boolean }
  /** Another writer had already ended this attempt (or the run): nothing was written. */
  | { readonly kind: 'refused' };

/** Fields of the record that describe one attempt; cleared when the run waits for the next. */
const PER_ATTEMPT_FIELDS = ['exitCode', 'startedAt', 'finishedAt', 'containerId', 'deadline', 'job'] as const;

/**
 * Ends the run's current attempt: a retried outcome with attempts left sends the run back
 * to `queued` for the next one; anything else is the run's outcome, and a retried outcome
 * with no attempt left makes the run dead (`dead: true`: it failed for good and needs a
 * person; `runlet retry` runs it again). Either way the attempt is appended to the
 * record's `attempts`, in the same Redis script as the status change.
 */
export async function endAttempt(
  deps: RetryDeps,
  runId: string,
  task: TaskConfig,
  end: AttemptEnd,
  now = Date.now(),
): Promise<AttemptOutcome> {
  const run = await deps.store.get(runId);
  if (!run) return { kind: 'refused' };
  const attempt = end.attempt ?? currentAttempt(run);
  if (attempt !== currentAttempt(run)) return { kind: 'refused' };
  // An attempt that never started gives its place back (neverStarted): one more is allowed.
  const maxAttempts = (run.maxAttempts ?? task.retries.attempts) + (end.neverStarted ? 1 : 0);
  const entry: AttemptRecord = {
    attempt,
    status: end.status,
    ...(end.exitCode !== undefined && { exitCode: end.exitCode }),
    ...(end.reason !== undefined && { reason: end.reason }),
    ...((end.startedAt ?? run.startedAt) !== undefined && { startedAt: end.startedAt ?? run.startedAt }),
    finishedAt: end.finishedAt,
    ...(run.containerId !== undefined && { containerId: run.containerId }),
  };
  const usage = addUsage(run.usage, end.usage);
  const retried = RETRIED_STATUSES.includes(end.status);
  // A declaration that the attempt is lost ends it only while it is in progress: a second
  // declarer (it read the run before the first one wrote, and names the same dead holder's
  // claim) is refused by the status, rather than appending the attempt's end again and ending
  // the run twice, or retrying a run already reported lost. Real outcomes still replace `lost`.
  const lost = end.status === 'lost';

  if (retried && attempt < maxAttempts) {
    const nextAttempt = attempt + 1;
    const delayMs = Math.max(retryDelayMs(task.retries, attempt), end.notBefore === undefined ? 0 : end.notBefore - now);
    const claimed = await deps.store.endAttempt(runId, MOVES.retry.to, {
      from: lost ? MOVES.lose.from : MOVES.retry.from,
      attempt,
      claim: end.claim,
      entry,
      reason: `attempt ${attempt} of ${maxAttempts} ${describeEnd(end)}; ${delayMs > 0 ? `retrying in ${formatDuration(delayMs)}` : 'retrying now'}`,
      fields: { attempt: nextAttempt, retryAt: now + delayMs, usage, ...(end.neverStarted && { maxAttempts }) },
      clear: PER_ATTEMPT_FIELDS,
      left: end.left,
      now,
    });
    if (!claimed) return { kind: 'refused' };
    // Exactly one retry per attempt, argued like the first run's (enqueue.ts):
    // 1. The claim above is a compare-and-set in one Lua script: it moves the run out of
    //    starting/running/lost only if `attempt` is still the current attempt, and writes
    //    the next attempt number. However often the job that ran this attempt is delivered (a
    //    stalled job comes back) and however many daemons end the same attempt, one caller
    //    wins it; the others are refused and add nothing.
    // 2. Only the winner adds the job, with the deterministic id `<runId>-a<n>`: adding it
    //    twice makes one job. If the winner dies between the claim and the add, the claim
    //    also put the run in the outbox, and recoverOutbox adds this same job id with what
    //    is left of the delay (from `retryAt`).
    // 3. The worker starts the next attempt only by moving the run from `queued` to
    //    `starting`, so the retry job, however often delivered, runs the attempt once. (A
    //    late redelivery of the previous attempt's job could win that claim first: the
    //    attempt then starts before its delay is over, but still runs once.)
    // The run keeps its task's slot between attempts (gate.ts), so its job goes straight in.
    await deps.queues.add(task.pool, { runId, task: task.name }, jobIdFor(runId, nextAttempt), delayMs);
    await deps.store.confirmQueued(runId);
    deps.events.emit('run:retrying', { runId, task: task.name, status: end.status, attempt, nextAttempt, delayMs });
    deps.logger.info({ runId, task: task.name, attempt, maxAttempts, status: end.status, delayMs }, 'attempt failed; retrying');
    return { kind: 'retrying', nextAttempt, delayMs };
  }

  const dead = retried;
  const applied = await deps.store.endAttempt(runId, end.status, {
    from: lost ? MOVES.lose.from : MOVES.endAttempt.from,
    attempt,
    claim: end.claim,
    entry,
    reason: end.reason,
    fields: {
      exitCode: end.exitCode,
      startedAt: end.startedAt,
      finishedAt: end.finishedAt,
      usage,
      ...(dead && { dead: true }),
    },
    // A lost run whose real outcome arrives may have been dead as lost: it is dead only if
    // this outcome is.
    clear: dead ? ['retryAt'] : ['retryAt', 'dead'],
    left: end.left,
    now,
  });
  return applied ? { kind: 'ended', status: end.status, dead } : { kind: 'refused' };
}

function describeEnd(end: AttemptEnd): string {
  const what =
    { failed: 'failed', timed_out: 'timed out', oom_killed: 'was OOM-killed', lost: 'was lost' }[end.status as string] ??
    `ended ${end.status}`;
  return end.reason ? `${what} (${end.reason})` : what;
}
