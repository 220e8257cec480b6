import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RunletConfig, TaskConfig } from '../config/types.js';
import type { RunletEvents } from '../runs/events.js';
import type { RunFailedToStartLike } from './failure.js';
import { describeFailure } from './failure.js';
import type { PreparedRun, RunResult, RunSpec, Runtime } from '../runtime/types.js';
import type { RunStore } from '../runs/store.js';
import { currentAttempt, isTerminal, MOVES, type RunRecord, type RunStatus } from '../runs/types.js';
import { NO_USAGE, usageOf } from '../runs/usage.js';
import { isDaemonAlive, type Identity } from './identity.js';
import type { TaskQueues } from './queues.js';
import { endAttempt } from './retries.js';
import { LogPublisher } from '../runs/log-stream.js';
import { addDailyUsage } from '../runs/daily-usage.js';
import { formatRunLabels, LABEL_RUN, nodeLabels, parseRunLabels } from '../runtime/labels.js';
import { recordAgainIfLost } from './orphans.js';

export interface RunContext {
  readonly config: RunletConfig;
  readonly store: RunStore;
  readonly runtime: Runtime;
  readonly redis: Redis;
  readonly identity: Identity;
  readonly events: RunletEvents;
  readonly logger: Logger;
  /** For the delayed job of a retried run's next attempt (retries.ts). */
  readonly queues: TaskQueues;
  /** Runs this process is executing or has adopted, so a redelivered job joins, not repeats. */
  readonly active: Map<string, { done: Promise<void>; cancel: AbortController }>;
}

/**
 * Executes the run behind one queue job, at most once.
 *
 * BullMQ delivers a job at least once (a stalled job is delivered again), so the run
 * record, not the job, decides: the `queued → starting` transition is a compare-and-set
 * in Redis, and only the worker that wins it creates a container. A redelivery finds the
 * run past `queued` and only settles what the first delivery could not.
 */
export async function runJob(ctx: RunContext, runId: string): Promise<void> {
  const joined = ctx.active.get(runId);
  if (joined) return joined.done;

  const run = await ctx.store.get(runId);
  if (!run || isTerminal(run.status)) return;
  if (run.status !== 'queued') return settleRedelivered(ctx, run);

  const task = ctx.config.tasks[run.task];
  if (!task) {
    await ctx.store.transition(runId, MOVES.failUnconfigured.to, {
      from: MOVES.failUnconfigured.from,
      reason: `task "${run.task}" is not in the configuration this daemon loaded (${ctx.config.file})`,
      fields: { finishedAt: Date.now() },
    });
    return;
  }

  // The claim, exactly once per attempt: of all workers that may hold this job (BullMQ
  // delivers at least once, and a retry's job can meet a late redelivery of the last one),
  // only the one whose compare-and-set moves the run out of `queued`, at the attempt it
  // read, goes on to create a container. The token is this call's own, recorded by the same
  // script: if the connection drops after the script ran, ioredis resends it and the resend
  // is answered true for this token alone (claimRun-3.lua), so the winner is never told it
  // lost and the run never stays `starting` with no one to start it. Per call, not per
  // daemon: two deliveries of the job in this process still make one winner.
  const claimed = await ctx.store.claim(runId, {
    attempt: currentAttempt(run),
    token: `${ctx.identity.daemonId}:a${currentAttempt(run)}:${randomUUID()}`,
    fields: { node: ctx.identity.node, daemon: ctx.identity.daemonId, image: task.image, memoryBytes: task.memoryBytes },
  });
  if (!claimed) return;

  const cancel = new AbortController();
  const done = execute(ctx, run, task, cancel.signal).finally(() => ctx.active.delete(runId));
  ctx.active.set(runId, { done, cancel });
  return done;
}

async function execute(ctx: RunContext, run: RunRecord, task: TaskConfig, cancel: AbortSignal): Promise<void> {
  const log = ctx.logger.child({ runId: run.id, task: task.name, trigger: run.trigger });
  const spec = specFor(ctx, run, task);
  let prepared: PreparedRun;
  try {
    prepared = await ctx.runtime.prepare(spec);
  } catch (err) {
    // Never log-and-drop: a run that could not start is recorded as failed with the reason.
    const reason = describeFailure(err as RunFailedToStartLike);
    log.warn({ reason }, 'run could not be created');
    await finish(ctx, run.id, task, { outcome: 'failed', reason, logTail: '', logBytes: 0 }, currentAttempt(run));
    return;
  }
  // After prepare, not before: prepare waits for an engine that is coming back, so the
  // engine answers now and the leftovers can be found.
  await removeEarlierAttempts(ctx, run.id, spec.attempt, log);
  const removeContainer = () => ctx.runtime.remove(prepared.containerId).catch((err) => log.error({ err }, 'could not remove container'));
  try {
    await ctx.runtime.start(prepared);
  } catch (err) {
    const reason = describeFailure(err as RunFailedToStartLike);
    log.warn({ reason }, 'run could not be started');
    await removeContainer();
    await finish(ctx, run.id, task, { outcome: 'failed', reason, logTail: '', logBytes: 0 }, currentAttempt(run));
    return;
  }
  const startedAt = Date.now();
  await ctx.store.transition(run.id, MOVES.run.to, {
    from: MOVES.run.from,
    fields: { containerId: prepared.containerId, startedAt },
  });
  // A retry is due at retryAt, not when the run was first made.
  const queuedAt = currentAttempt(run) > 1 && run.retryAt !== undefined ? run.retryAt : run.createdAt;
  ctx.events.emit('run:started', { runId: run.id, task: task.name, containerId: prepared.containerId, startedAt, queuedAt });
  log.info({ containerId: prepared.containerId.slice(0, 12) }, 'run started');
  // waitAndFinish removes the container itself; only a failure inside it leaves that to us.
  await waitAndFinish(ctx, prepared, task, { attempt: currentAttempt(run), cancel, log }).catch(async (err) => {
    await removeContainer();
    throw err;
  });
}

/**
 * Removes, by label, this run's containers of earlier attempts on this node: an attempt that
 * ended while its engine was restarting could not remove its container, and nothing else
 * would until the next start-up. Safe to remove whoever made them: the run has moved past
 * those attempts (only the claim of this one got here), so their outcomes are no longer the
 * run's to record, as in start-up settling.
 */
async function removeEarlierAttempts(ctx: RunContext, runId: string, attempt: number, log: Logger): Promise<void> {
  if (attempt <= 1) return;
  const { clusterId, node } = ctx.identity;
  try {
    for (const c of await ctx.runtime.list({ ...nodeLabels(clusterId, node), [LABEL_RUN]: runId })) {
      const left = parseRunLabels(c.labels).attempt;
      if (left >= attempt) continue;
      log.info({ containerId: c.containerId.slice(0, 12), attempt: left }, 'removing the container an earlier attempt of this run left');
      await ctx.runtime.remove(c.containerId);
    }
  } catch (err) {
    // The attempt's own container has its own name, so a leftover does not stop it; start-up
    // settling removes what is still there.
    log.warn({ err }, "could not remove an earlier attempt's container");
  }
}

export interface WaitOptions {
  /**
   * The attempt the container runs, as its label says: its log position and live output are
   * marked with it. Passed in, not read from the spec, because an adopted container's spec is
   * rebuilt from the task and carries none of the container's labels.
   */
  readonly attempt: number;
  readonly cancel: AbortSignal;
  readonly log: Logger;
  /** An adopted container's original deadline (epoch ms). */
  readonly deadline?: number;
}

/**
 * Waits for the container, streaming its log tail into the record, removes it, then
 * records the outcome: once a record says a run ended, its container is gone. (A crash
 * between the two leaves a `running` record without a container, which a redelivered job
 * turns into `lost`: never a container without a record.)
 */
export async function waitAndFinish(ctx: RunContext, prepared: PreparedRun, task: TaskConfig, opts: WaitOptions): Promise<void> {
  const { attempt, cancel, log, deadline } = opts;
  let writing: Promise<void> = Promise.resolve();
  const live = new LogPublisher(ctx.redis, prepared.runId, attempt);
  const result = await ctx.runtime.wait(prepared, {
    cancel,
    deadline,
    // Writes are chained so an older tail can never land after a newer one; each is announced
    // to live followers only once stored (runs/log-stream.ts).
    onOutput: (tail, endOffset) => {
      // Fenced by the attempt: once the run has moved on (this attempt was declared lost and
      // retried while this process was frozen or cut off), the tail is the new attempt's.
      writing = writing
        .then(() => ctx.store.setLogTail(prepared.runId, tail, { attempt, bytes: endOffset }))
        .then(async (written) => void (written && (await live.tailWritten(endOffset))))
        .catch(() => undefined);
    },
    onLog: (chunk, offset) => live.chunk(offset, chunk),
  });
  await writing;
  await ctx.runtime.remove(prepared.containerId).catch((err) => log.error({ err }, 'could not remove container'));
  // A run whose record Redis lost meanwhile (emptied, failed over) is recorded again first, so its end is not dropped.
  await recordAgainIfLost(ctx, prepared, attempt, result.startedAt);
  const status = await finish(ctx, prepared.runId, task, result, attempt);
  log.info({ status, exitCode: result.exitCode, reason: result.reason }, 'run finished');
}

/**
 * Ends `attempt`: retries.ts records it and either queues the run's next attempt (the
 * status returned is then `queued`) or records the terminal outcome with its usage. Then
 * applies retention for the task.
 *
 * Status, usage, log tail and output are written by one script fenced by `attempt`
 * (endAttempt-7.lua), so this attempt's end is recorded at most once, and not at all once
 * the run has moved on: a process that was frozen or cut off while its run was declared
 * lost and retried finds its late end refused, and the current attempt's record stands.
 */
export async function finish(ctx: RunContext, runId: string, task: TaskConfig, result: RunResult, attempt: number): Promise<RunStatus> {
  const now = Date.now();
  const finishedAt = result.finishedAt ?? now;
  const usage = usageOf(result.startedAt, finishedAt, task.memoryBytes);
  const ended = await endAttempt(
    ctx,
    runId,
    task,
    {
      attempt,
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
      { runId, task: task.name, attempt, status: result.outcome },
      'the end of an attempt the run has moved past (or that was already recorded) was refused',
    );
  // Counted only by the writer whose end was applied, so an attempt is counted once.
  if (ended.kind !== 'refused')
    await addDailyUsage(ctx.redis, task, usage, ended.kind === 'ended', finishedAt).catch((err) =>
      ctx.logger.warn({ err, runId }, 'could not add to the daily usage'),
    );
  if (ended.kind === 'ended') {
    const record = await ctx.store.get(runId);
    ctx.events.emit('run:finished', { runId, task: task.name, status: ended.status, record });
  }
  await ctx.store.trim(task.name, ctx.config.retention.runsPerTask, ctx.config.retention.maxAgeMs).catch(() => undefined);
  return ended.kind === 'retrying' ? 'queued' : result.outcome;
}

/**
 * A job delivered again although its run already left `queued`: the worker that had it
 * stopped renewing its lock. If that daemon still lives (it was only slow), it will record
 * the outcome itself. If it is gone and the run was on another node, its container is out
 * of reach: the run is `lost` (and gets its real outcome if that node's daemon returns and
 * settles the container). On this node, start-up settling has adopted what was left.
 */
async function settleRedelivered(ctx: RunContext, run: RunRecord): Promise<void> {
  if (run.daemon && run.daemon !== ctx.identity.daemonId && (await isDaemonAlive(ctx.redis, run.daemon))) return;
  if (run.status === 'lost') return;
  const where = run.node === ctx.identity.node ? 'this node' : `node "${run.node}"`;
  const reason = `the daemon running it on ${where} stopped while the run was ${run.status}`;
  await markLost(ctx, run, currentAttempt(run), reason);
}

/**
 * Ends an attempt whose container is out of reach or never started as `lost`. Like any
 * other end of an attempt, a lost attempt is retried when attempts are left.
 */
export async function markLost(ctx: RunContext, run: RunRecord, attempt: number, reason: string): Promise<void> {
  const task = ctx.config.tasks[run.task];
  if (!task) {
    await ctx.store.transition(run.id, MOVES.loseUnconfigured.to, {
      from: MOVES.loseUnconfigured.from,
      reason,
      fields: { finishedAt: Date.now() },
    });
    return;
  }
  const ended = await endAttempt(ctx, run.id, task, { attempt, status: 'lost', reason, finishedAt: Date.now(), usage: NO_USAGE });
  if (ended.kind === 'ended') {
    await addDailyUsage(ctx.redis, task, NO_USAGE, true, Date.now()).catch(() => undefined);
    const latest = await ctx.store.get(run.id);
    ctx.events.emit('run:finished', { runId: run.id, task: run.task, status: 'lost', record: latest });
  }
}

/** Payloads up to this size are also passed as RUNLET_PAYLOAD. */
export const ENV_PAYLOAD_MAX_BYTES = 32 * 1024;

export function specFor(ctx: RunContext, run: RunRecord, task: TaskConfig): RunSpec {
  const env: Record<string, string> = {
    ...task.env,
    RUNLET_RUN_ID: run.id,
    RUNLET_TASK: task.name,
    RUNLET_TRIGGER: run.trigger,
    RUNLET_NODE: ctx.identity.node,
    RUNLET_ATTEMPT: String(currentAttempt(run)),
  };
  if (run.scheduledAt !== undefined) env.RUNLET_SCHEDULED_AT = new Date(run.scheduledAt).toISOString();
  // A body kept as sent (contentType set) is delivered as it came, not JSON-encoded.
  const payload =
    run.payload === undefined
      ? undefined
      : run.contentType !== undefined && typeof run.payload === 'string'
        ? run.payload
        : JSON.stringify(run.payload);
  if (run.contentType !== undefined) env.RUNLET_CONTENT_TYPE = run.contentType;
  if (run.headers !== undefined) env.RUNLET_HEADERS = JSON.stringify(run.headers);
  // Small payloads also as an env var, handy in shell tasks; a large one would make exec
  // fail (Linux caps one env string at 128 KiB), so those come by file and stdin only.
  if (payload !== undefined && Buffer.byteLength(payload) <= ENV_PAYLOAD_MAX_BYTES) env.RUNLET_PAYLOAD = payload;
  return {
    runId: run.id,
    task: task.name,
    attempt: currentAttempt(run),
    image: task.image,
    command: task.command,
    env,
    memoryBytes: task.memoryBytes,
    cpus: task.cpus,
    pids: task.pids,
    timeoutMs: task.timeoutMs,
    killGraceMs: task.killGraceMs,
    payload,
    user: task.user,
    readOnly: task.readOnly,
    network: task.network,
    labels: formatRunLabels({
      node: ctx.identity.node,
      cluster: ctx.identity.clusterId,
      daemon: ctx.identity.daemonId,
      deadline: Date.now() + task.timeoutMs,
      // Start-up settling removes, unrecorded, a container of an attempt the run has moved past.
      attempt: currentAttempt(run),
      trigger: run.trigger,
    }),
  };
}
