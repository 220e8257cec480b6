import type { Logger } from 'pino';
import type { TaskConfig } from '../config/types.js';
import type { InvocationResult } from '../runtime/reusable.js';
import type { RunResult, RunSpec } from '../runtime/types.js';
import { OUTPUT_LIMIT_BYTES } from '../runtime/output.js';
import { maskedValues, maskText } from '../runs/secret-mask.js';
import { MOVES, type RunRecord } from '../runs/types.js';
import { finish } from './attempt-end.js';
import type { RunContext } from './context.js';
import type { RunFailedToStartLike } from './failure.js';
import { describeFailure } from './failure.js';

interface ReuseHeld {
  readonly attempt: number;
  readonly claim: string;
  /** Past this (epoch ms: the claim's start budget) nothing is invoked. */
  readonly startBy: number;
  readonly cancel: AbortSignal;
  readonly log: Logger;
}

/**
 * Runs one claimed run of a `reuse: true` task as one invocation of a reusable instance on
 * this node: admitted, claimed and recorded as any run (its own record, timeout, outcome,
 * usage), but instead of a container per run, the event goes to an instance that serves one
 * invocation at a time through the Lambda Runtime API. The same fence as a cold start: the
 * claim is checked once the instance is leased, and `starting → running` is the fenced
 * transition, before the event is handed over. An instance is recycled by the runtime after
 * an error, a timeout, or its maxInvocations.
 */
export async function invokeReused(ctx: RunContext, run: RunRecord, task: TaskConfig, spec: RunSpec, held: ReuseHeld): Promise<void> {
  const { log } = held;
  const fence = { attempt: held.attempt, claim: held.claim };
  let lease;
  try {
    lease = await ctx.reuse!.lease(task);
  } catch (err) {
    const reason = describeFailure(err as RunFailedToStartLike);
    log.warn({ reason }, 'no reusable instance could be started for the run');
    await finish(ctx, run.id, task, { outcome: 'failed', reason, logTail: '', logBytes: 0 }, fence);
    return;
  }
  const { instance } = lease;
  const onCancel = () => void instance.retire(`cancelled: ${String(held.cancel.reason)}`);
  try {
    // Only the claim is needed here (one HMGET, not the whole record): the fenced transition
    // below is what makes the start exactly-once; this spares an instance a doomed lease.
    const [now] = await ctx.store.claims([run.id]);
    if (!now || now.claim !== held.claim || Date.now() > held.startBy) {
      log.warn({ claimed: now !== undefined }, 'the claim on the run was lost before its invocation: not invoking');
      return;
    }
    const startedAt = Date.now();
    const started = await ctx.store.fencedTransition(run.id, MOVES.run.to, {
      from: MOVES.run.from,
      ...fence,
      fields: { containerId: instance.containerId, startedAt, deadline: startedAt + task.timeoutMs + task.killGraceMs },
    });
    if (!started) {
      log.warn('the claim on the run was lost as its invocation started: not invoking');
      return;
    }
    ctx.events.emit('run:started', {
      runId: run.id,
      task: task.name,
      containerId: instance.containerId,
      startedAt,
      queuedAt: run.createdAt,
    });
    // A cancel (or a deposed claim) ends the instance: the invocation in progress ends `cancelled`.
    held.cancel.addEventListener('abort', onCancel, { once: true });
    if (held.cancel.aborted) onCancel();
    let result: RunResult;
    try {
      result = resultOf(await instance.invoke(spec.payload ?? '{}', { timeoutMs: task.timeoutMs, requestId: run.id }), startedAt);
    } catch (err) {
      result = { outcome: 'failed', reason: (err as Error).message, logTail: '', startedAt, finishedAt: Date.now() };
    }
    // The task's secrets are masked before any output reaches Redis, as for a container's (runs/secret-mask.ts).
    const secrets = maskedValues(Object.values(task.secrets));
    if (secrets.length > 0) {
      const logTail = maskText(result.logTail, secrets);
      result = {
        ...result,
        logTail,
        logBytes: Buffer.byteLength(logTail),
        ...(result.reason !== undefined && { reason: maskText(result.reason, secrets) }),
      };
    }
    const status = await finish(ctx, run.id, task, result, fence);
    log.info({ status, instanceId: instance.instanceId, reason: result.reason }, 'invocation finished');
  } finally {
    held.cancel.removeEventListener('abort', onCancel);
    lease.release();
  }
}

/** An invocation's end in the runs' words: a response body is the run's output (as output.json is a cold run's). */
function resultOf(r: InvocationResult, startedAt: number): RunResult {
  const body = r.body?.toString('utf8');
  const tooLarge = r.body !== undefined && r.body.length > OUTPUT_LIMIT_BYTES;
  const logTail = r.log;
  if (r.outcome === 'succeeded')
    return {
      outcome: 'succeeded',
      startedAt: r.startedAt ?? startedAt,
      finishedAt: r.finishedAt,
      logTail,
      logBytes: Buffer.byteLength(logTail),
      ...(tooLarge
        ? { outputError: `the response was ${r.body!.length} bytes, over the ${OUTPUT_LIMIT_BYTES} kept` }
        : body !== undefined && { output: body }),
    };
  // An error document ({errorMessage, errorType}) says why, as Lambda reports it.
  const detail = body && !tooLarge ? `: ${body.slice(0, 1000)}` : '';
  return {
    outcome: r.outcome,
    reason: `${r.reason ?? r.outcome}${detail}`,
    startedAt: r.startedAt ?? startedAt,
    finishedAt: r.finishedAt,
    logTail,
    logBytes: Buffer.byteLength(logTail),
  };
}
