import type { TaskConfig } from '../config/types.js';
import { addDailyUsage } from '../runs/daily-usage.js';
import { MOVES, type RunRecord, type RunStatus } from '../runs/types.js';
import { NO_USAGE, usageOf } from '../runs/usage.js';
import type { RunResult } from '../runtime/types.js';
import type { RunContext } from './context.js';
import { endAttempt } from './retries.js';

/**
 * The two ways an attempt ends: with its container's result (finish), or out of reach
 * (markLost). Both go through endAttempt-7.lua, fenced by the attempt and the claim.
 */

/**
 * Ends `attempt` with its container's result: retries.ts records it and either queues the
 * run's next attempt (the status returned is then `queued`) or records the terminal outcome
 * with its usage. Then applies retention for the task.
 *
 * Status, usage, log tail and output are written by one script fenced by `attempt` and
 * `claim` (endAttempt-7.lua), so this attempt's end is recorded at most once, and not at
 * all once the run has moved on or another daemon holds its claim: a process that was
 * frozen or cut off while its run was declared lost (and retried) or adopted finds its late
 * end refused, and the current holder's record stands.
 */
export async function finish(
  ctx: RunContext,
  runId: string,
  task: TaskConfig,
  result: RunResult,
  fence: { attempt: number; claim?: string },
): Promise<RunStatus> {
  const now = Date.now();
  const finishedAt = result.finishedAt ?? now;
  const usage = usageOf(result.startedAt, finishedAt, task.memoryBytes);
  const ended = await endAttempt(
    ctx,
    runId,
    task,
    {
      attempt: fence.attempt,
      claim: fence.claim,
      status: result.outcome,
      exitCode: result.exitCode,
      reason: result.reason,
      startedAt: result.startedAt,
      finishedAt,
      usage,
      left: { logTail: result.logTail, logBytes: result.logBytes, output: result.output, outputError: result.outputError },
    },
    now,
  );
  if (ended.kind === 'refused')
    ctx.logger.warn(
      { runId, task: task.name, attempt: fence.attempt, status: result.outcome },
      'the end of an attempt the run has moved past, or whose claim another daemon holds (or that was already recorded), was refused',
    );
  // Counted only by the writer whose end was applied, so an attempt is counted once.
  if (ended.kind !== 'refused')
    await addDailyUsage(ctx.redis, task, usage, ended.kind === 'ended', finishedAt).catch((err) =>
      ctx.logger.warn({ err, runId }, 'could not add to the daily usage'),
    );
  if (ended.kind === 'ended') {
    const record = await ctx.store.get(runId);
    await freeSlot(ctx, task.name, runId, ended.status, record?.deadline);
    ctx.events.emit('run:finished', { runId, task: task.name, status: ended.status, record });
  }
  await ctx.store.trim(task.name, ctx.config.retention.runsPerTask, ctx.config.retention.maxAgeMs).catch(() => undefined);
  return ended.kind === 'retrying' ? 'queued' : result.outcome;
}

export interface LostOptions {
  /**
   * The claim this daemon read when it judged the holder dead: the end is a compare-and-set
   * on it, so an attempt adopted meanwhile (its holder's node came back) is not declared lost.
   */
  readonly claim?: string;
  /** The next attempt starts no earlier (epoch ms): the lost container's deadline, when it may still run. */
  readonly notBefore?: number;
  /** Known never to have started (this node's engine has no started container of it): it does not count as an attempt. */
  readonly neverStarted?: boolean;
}

/**
 * Ends an attempt whose container is out of reach or never started as `lost`. Like any
 * other end of an attempt, a lost attempt is retried when attempts are left; `notBefore`
 * holds the retry back while the lost container may still be running somewhere.
 * Returns whether this call ended it: of the daemons that judged the same holder dead and
 * race to declare its attempt lost, one (MOVES.lose: never from `lost`).
 */
export async function markLost(ctx: RunContext, run: RunRecord, attempt: number, reason: string, opts: LostOptions = {}): Promise<boolean> {
  const task = ctx.config.tasks[run.task];
  if (!task) {
    return ctx.store.transition(run.id, MOVES.lose.to, {
      from: MOVES.lose.from,
      reason,
      fields: { finishedAt: Date.now() },
    });
  }
  const ended = await endAttempt(ctx, run.id, task, {
    attempt,
    claim: opts.claim,
    notBefore: opts.notBefore,
    neverStarted: opts.neverStarted,
    status: 'lost',
    reason,
    finishedAt: Date.now(),
    usage: NO_USAGE,
  });
  if (ended.kind === 'ended') {
    await addDailyUsage(ctx.redis, task, NO_USAGE, true, Date.now()).catch(() => undefined);
    const latest = await ctx.store.get(run.id);
    await freeSlot(ctx, task.name, run.id, 'lost', latest?.deadline);
    ctx.events.emit('run:finished', { runId: run.id, task: run.task, status: 'lost', record: latest });
  }
  return ended.kind !== 'refused';
}

/**
 * Frees the task slot of a run this daemon just ended, at once: every daemon also frees it
 * from the ended-runs stream (daemon.ts), which this spares a round trip and covers a
 * reader that is reconnecting. Idempotent (gate.ts): the first free admits the next run.
 */
async function freeSlot(ctx: RunContext, taskName: string, runId: string, status: RunStatus, deadline: number | undefined): Promise<void> {
  try {
    const admitted = await ctx.gate.ended(taskName, runId, status, deadline);
    if (admitted.length > 0) await ctx.gate.onAdmitted(taskName, admitted);
  } catch (err) {
    ctx.logger.warn({ err, runId }, 'could not free the task slot of an ended run; the sweep frees it');
  }
}
