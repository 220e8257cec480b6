import type { Logger } from 'pino';
import { DEFAULTS } from '../config/defaults.js';
import type { RunletConfig } from '../config/types.js';
import type { RunletEvents } from '../runs/events.js';
import type { RunStore } from '../runs/store.js';
import { currentAttempt, type RunRequest } from '../runs/types.js';
import { firstSkipReason, type Policy } from './policies.js';
import type { TaskGate } from './gate.js';
import { jobIdFor, type PoolQueues } from './queues.js';

export interface EnqueueDeps {
  config: RunletConfig;
  policies: readonly Policy[];
  store: RunStore;
  queues: PoolQueues;
  gate: TaskGate;
  events: RunletEvents;
  logger: Logger;
}

export interface Enqueued {
  runId: string;
  /** False when the request's dedupe key already had a run: nothing new was made. */
  created: boolean;
  /** Set when the request was recorded as `skipped` instead of queued. */
  skipped?: string;
}

/**
 * The one way into the run queue, for every trigger.
 *
 * Exactly once, argued in two steps:
 * 1. `store.create` claims the dedupe key and writes the run record in one Lua script, so of
 *    any number of daemons handling the same event, exactly one gets `created: true`.
 * 2. Only that one admits it through the task gate and adds the queue job, with job id =
 *    run id (or parks it, and the free that admits it later adds the job). If it dies
 *    between the steps, the run sits in the outbox, and `recoverOutbox` (run by every
 *    daemon) admits it and adds the job later; re-admitting a run that holds a slot is a
 *    no-op, re-adding is harmless because BullMQ ignores an add whose job id exists, and
 *    the worker refuses to start a run that is no longer `queued`.
 * So each event is queued at least once, and runs at most once: exactly once.
 */
export async function enqueue(
  deps: EnqueueDeps,
  request: RunRequest,
  opts: { cronMarker?: boolean; runId?: string; skipReason?: string } = {},
): Promise<Enqueued> {
  const task = deps.config.tasks[request.task];
  const skipped = opts.skipReason ?? (task ? await firstSkipReason(deps.policies, request, task) : undefined);
  if (skipped) {
    // Recorded through the same dedupe claim, so a skipped tick is one record however many
    // daemons skip it.
    const res = await deps.store.create(request, { cronMarker: opts.cronMarker, runId: opts.runId, status: 'skipped', reason: skipped });
    received(deps, request, res, true);
    if (res.created) {
      deps.events.emit('run:skipped', { runId: res.runId, task: request.task, reason: skipped });
      deps.events.emit('run:finished', { runId: res.runId, task: request.task, status: 'skipped' });
      if (task) await deps.store.trim(task.name, deps.config.retention.runsPerTask, deps.config.retention.maxAgeMs).catch(() => undefined);
    }
    return { ...res, skipped };
  }
  const { runId, created } = await deps.store.create(request, {
    cronMarker: opts.cronMarker,
    runId: opts.runId,
    maxAttempts: task?.retries.attempts,
  });
  received(deps, request, { runId, created }, false);
  if (!created) return { runId, created };
  // Jitter spreads the ticks of many tasks (and of many daemons' clocks) over a window.
  const delayMs = request.trigger === 'cron' && !request.backfill && task?.jitterMs ? Math.floor(Math.random() * task.jitterMs) : 0;
  await admitAndAdd(deps, request.task, runId, delayMs);
  deps.events.emit('run:queued', { runId, task: request.task, trigger: request.trigger });
  return { runId, created };
}

/**
 * Through the task gate into the pool's queue: a run that gets a slot has its job added; one
 * that is parked has none until a slot is freed for it (gate.ts), which puts it back in the
 * outbox and adds its job then (`addAdmitted`). Either way it leaves the outbox only once
 * one of the two holds it, so a crash in between leaves it for recoverOutbox.
 */
async function admitAndAdd(deps: EnqueueDeps, taskName: string, runId: string, delayMs = 0, jobId = runId): Promise<boolean> {
  if (await deps.gate.admit(taskName, runId)) {
    await addJob(deps, taskName, runId, delayMs, jobId);
    return true;
  }
  // Parked: it stays in the outbox, looked at again a minute from now. Should its parked
  // entry be lost (a failover before it reached the replica), recoverOutbox parks or admits
  // it again; a run is never left queued with neither a job nor a place in the gate.
  await deps.store.recheckLater(runId, Date.now() + PARKED_RECHECK_MS);
  return false;
}

/** How often a parked run is looked at again by outbox recovery (see admitAndAdd). */
export const PARKED_RECHECK_MS = 60_000;

/**
 * Adds the jobs of parked runs a freed slot admitted (they are in the outbox since the same
 * script admitted them). A run that ended meanwhile (cancelled while parked) gives its slot
 * straight back, which admits the next.
 */
export async function addAdmitted(deps: EnqueueDeps, taskName: string, runIds: readonly string[]): Promise<void> {
  for (const runId of runIds) {
    const run = await deps.store.get(runId);
    if (run?.status === 'queued') {
      await addJob(deps, taskName, runId, Math.max(0, (run.retryAt ?? 0) - Date.now()), jobIdFor(runId, currentAttempt(run)));
      continue;
    }
    await deps.store.confirmQueued(runId);
    const next = await deps.gate.free(taskName, runId);
    if (next.length > 0) await addAdmitted(deps, taskName, next);
  }
}

/**
 * Tells the metrics that a trigger's event arrived and what became of it. Catch-up's missed
 * ticks are counted here, by the one daemon whose claim created the record, so daemons
 * starting together count them once between them.
 */
function received(deps: EnqueueDeps, request: RunRequest, res: { runId: string; created: boolean }, skipped: boolean): void {
  deps.events.emit('trigger:event', { task: request.task, trigger: request.trigger, outcome: res.created ? 'accepted' : 'duplicate' });
  if (res.created && request.missedTicks !== undefined) {
    deps.events.emit('cron:missed', { task: request.task, ticks: request.missedTicks, runId: res.runId, caughtUp: !skipped });
  }
}

async function addJob(deps: EnqueueDeps, taskName: string, runId: string, delayMs = 0, jobId = runId): Promise<void> {
  // A task a reload removed keeps its runs in the default pool's queue, where a daemon that
  // still has the task may take them (workers.ts hands them back otherwise).
  const pool = deps.config.tasks[taskName]?.pool ?? DEFAULTS.pool;
  await deps.queues.add(pool, { runId, task: taskName }, jobId, delayMs);
  await deps.store.confirmQueued(runId);
}

/**
 * Adds the queue jobs of runs recorded at least `graceMs` ago whose job was never
 * confirmed (a daemon died between recording and queueing). The grace keeps us from
 * racing a daemon that is between the two steps right now; racing it would be harmless
 * anyway (same job id), only wasteful.
 */
export async function recoverOutbox(deps: EnqueueDeps, graceMs = 10_000): Promise<number> {
  const ids = await deps.store.unconfirmed(graceMs);
  let recovered = 0;
  for (const runId of ids) {
    const run = await deps.store.get(runId);
    if (!run || run.status !== 'queued') {
      await deps.store.confirmQueued(runId);
      continue;
    }
    try {
      // A run waiting for a retry gets that attempt's job, with what is left of its delay.
      const attempt = currentAttempt(run);
      if (await admitAndAdd(deps, run.task, runId, Math.max(0, (run.retryAt ?? 0) - Date.now()), jobIdFor(runId, attempt))) {
        recovered++;
        deps.logger.warn({ runId, task: run.task }, 'queued a run whose job was never added (its daemon stopped in between)');
      }
    } catch (err) {
      deps.logger.error({ err, runId }, 'could not re-add a run job; will try again');
    }
  }
  return recovered;
}
