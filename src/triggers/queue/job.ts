import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { QueueTriggerConfig, TaskConfig } from '../../config/types.js';
import type { Enqueued } from '../../dispatch/enqueue.js';
import { outputValue, type RunRecord, type RunRequest } from '../../runs/types.js';
import type { TriggerDeps } from '../types.js';

/** What a source job returns when its run succeeded: the producer reads it as `job.returnvalue`. */
export interface QueueJobResult {
  readonly runId: string;
  readonly status: 'succeeded';
  /** /runlet/output.json, parsed when it is JSON, else its text; absent when none was written. */
  readonly output?: unknown;
}

/** What `job.progress` is set to once the run is recorded, so a producer learns the run id early. */
export interface QueueJobProgress {
  readonly runId: string;
}

export interface SourceJobContext {
  readonly deps: Pick<TriggerDeps, 'submit' | 'ended' | 'store'>;
  readonly task: TaskConfig;
  readonly queue: QueueTriggerConfig;
  readonly logger: Logger;
  /** Settles when the trigger starts stopping: held jobs let go. One promise for all jobs, so waits add no listeners. */
  readonly stopping: Promise<void>;
  isStopping(): boolean;
  /** Settles once the worker is closed; from then on nothing a processor does is written to the queue. */
  readonly closed: Promise<void>;
}

/** A run's end is awaited in slices, so a run deleted meanwhile (retention) is noticed. */
const WAIT_SLICE_MS = 60_000;
const SUBMIT_RETRY_MIN_MS = 500;
const SUBMIT_RETRY_MAX_MS = 15_000;

/** The request of one source job: the same job (however often delivered) always asks for the same run. */
export function queueRequest(task: string, queue: string, jobId: string, data: unknown): RunRequest {
  return { task, trigger: 'queue', dedupeKey: `${task}:queue:${queue}:${jobId}`, payload: data, cause: `job ${jobId} of queue ${queue}` };
}

/**
 * The processor of the source queue's worker: one source job → one run, and the job ends as
 * its run ends.
 *
 * Exactly once, argued at the two places that matter:
 * - The job is held (BullMQ lock, renewed by the worker) from receipt until its run has
 *   ended, and completed or failed only after that. `submit` returns only once the run is
 *   durably recorded, so no job can end without its run having been recorded: a daemon that
 *   dies anywhere before that leaves the job active with a lock that lapses after
 *   lockDuration, and the stalled-job check (every daemon's worker runs it) puts it back to
 *   be delivered again. No job is lost.
 * - Every delivery of a job submits the same dedupe key (`<task>:queue:<queue>:<job id>`),
 *   and `submit` claims the key and writes the run in one script: however many times the
 *   job is delivered, to however many daemons (even two at once, after a lock lapsed under
 *   a frozen daemon), one submit gets `created: true` and every other one gets that same
 *   run id, and then waits for that run. No job makes two runs.
 * Producer-side duplicates (the same job id added twice) never reach us: BullMQ ignores an
 * add whose job id exists.
 */
export async function handleSourceJob(ctx: SourceJobContext, job: Job): Promise<QueueJobResult> {
  const jobId = job.id!;
  const log = ctx.logger.child({ jobId });
  refuseOversizedPayload(ctx.task, job.data);
  const request = queueRequest(ctx.task.name, ctx.queue.name, jobId, job.data);
  const { runId, created } = await submitUntilRecorded(ctx, request, log);
  if (created) log.info({ runId }, 'queue job recorded as a run');
  else log.info({ runId }, 'queue job delivered again; it already has a run, waiting for that one');
  // Best effort: the run id also reaches the producer in the return value or the error.
  await job
    .updateProgress({ runId } satisfies QueueJobProgress)
    .catch((err) => log.warn({ err, runId }, 'could not set the queue job progress'));
  const run = await holdUntilEnded(ctx, runId, log);
  return outcomeOf(run);
}

/** Too large is refused, never truncated (as the HTTP API does): the producer sees why. */
function refuseOversizedPayload(task: TaskConfig, data: unknown): void {
  const bytes = data === undefined ? 0 : Buffer.byteLength(JSON.stringify(data));
  if (bytes > task.maxPayloadBytes) {
    throw new UnrecoverableError(
      `payload of ${bytes} bytes is larger than task "${task.name}" accepts (maxPayload ${task.maxPayloadBytes} bytes); no run was made`,
    );
  }
}

/**
 * `submit` fails only when runlet's own Redis does. Failing the source job then would lose
 * the message (the producer's attempts are for its own errors, not ours), so it is tried
 * again while the job is held; the worker keeps renewing the job's lock meanwhile.
 */
async function submitUntilRecorded(ctx: SourceJobContext, request: RunRequest, log: Logger): Promise<Enqueued> {
  for (let waitMs = SUBMIT_RETRY_MIN_MS; ; waitMs = Math.min(waitMs * 2, SUBMIT_RETRY_MAX_MS)) {
    if (ctx.isStopping()) return letGo(ctx);
    try {
      return await ctx.deps.submit(request);
    } catch (err) {
      log.warn({ err, retryInMs: waitMs }, 'could not record the queue job as a run; trying again (the job stays held)');
      await Promise.race([sleep(waitMs), ctx.stopping]);
    }
  }
}

async function holdUntilEnded(ctx: SourceJobContext, runId: string, log: Logger): Promise<RunRecord> {
  for (;;) {
    if (ctx.isStopping()) return letGo(ctx);
    const run = await Promise.race([ctx.deps.ended.waitFor(runId, WAIT_SLICE_MS), ctx.stopping.then(() => undefined)]);
    if (ctx.isStopping()) return letGo(ctx);
    if (run) return run;
    let exists: boolean;
    try {
      exists = (await ctx.deps.store.get(runId)) !== undefined;
    } catch (err) {
      log.warn({ err, runId }, 'could not read the run a queue job waits for; trying again');
      await Promise.race([sleep(1000), ctx.stopping]);
      continue;
    }
    if (!exists) throw new UnrecoverableError(`run ${runId} no longer exists (deleted before it ended), so its outcome is unknown`);
  }
}

/**
 * The trigger is stopping: the job is neither completed nor failed, only left. Settling
 * after the worker is closed guarantees BullMQ writes nothing for it (it skips completion
 * and failure once its connection closes), and WaitingError would be ignored anyway. The
 * job's lock then lapses and it is delivered again, to this daemon restarted or another.
 */
async function letGo(ctx: SourceJobContext): Promise<never> {
  await ctx.closed;
  throw new WaitingError('runlet stopped while holding this job; it is delivered again once its lock lapses');
}

/** Succeeded: the return value. Any other end: UnrecoverableError, since runlet has already used the task's retries. */
export function outcomeOf(run: RunRecord): QueueJobResult {
  if (run.status === 'succeeded')
    return { runId: run.id, status: 'succeeded', ...(run.output !== undefined && { output: outputValue(run.output) }) };
  const detail = run.reason ?? (run.exitCode !== undefined ? `exit code ${run.exitCode}` : undefined);
  throw new UnrecoverableError(`run ${run.id} ended ${run.status}${detail ? `: ${detail}` : ''}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
