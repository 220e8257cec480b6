import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { TaskConfig } from '../config/types.js';
import type { RunFailedToStartLike } from './failure.js';
import { describeFailure } from './failure.js';
import { TaskNotConfigured } from './errors.js';
import { RunFailedToStart } from '../runtime/errors.js';
import type { DeliveredRun, PreparedRun, RunSpec, WarmInstance } from '../runtime/types.js';
import { invokeReused } from './reuse-run.js';
import { currentAttempt, isTerminal, MOVES, type RunRecord } from '../runs/types.js';
import { LogPublisher } from '../runs/log-stream.js';
import { OutputMask } from '../runs/secret-mask.js';
import { TailBuffer } from '../runtime/log-tail.js';
import { formatRunLabels, LABEL_RUN, nodeLabels, parseRunLabels } from '../runtime/labels.js';
import { finish } from './attempt-end.js';
import type { JobHandle, RunContext } from './context.js';
import { recordAgainIfLost } from './orphans.js';
import { watchRedelivered } from './redelivered.js';

/**
 * How long after its claim a run's container must be started: creating it waits up to 30 s
 * for an engine that is coming back (runtime/docker.ts), and image checks take their time.
 * Past it the claimant gives up rather than start a container after the deadline it
 * announced (`deadline` in the record, which other nodes wait out before a retry).
 */
export const START_BUDGET_MS = 60_000;

/** Why a container is stopped when its daemon finds its claim taken over. */
export const DEPOSED =
  'this daemon lost its claim on the run (it was declared lost or adopted by another daemon) and stopped its container';

/**
 * Executes the run behind one queue job, at most once.
 *
 * BullMQ delivers a job at least once (a stalled job is delivered again), so the run
 * record, not the job, decides: the `queued → starting` transition is a compare-and-set
 * in Redis, and only the worker that wins it creates a container. A redelivery finds the
 * run past `queued` and watches the holder instead (redelivered.ts).
 */
export async function runJob(ctx: RunContext, runId: string, job: JobHandle = {}): Promise<void> {
  let run = await ctx.store.get(runId);
  // A lost run goes on to the watch: its container may still run elsewhere until its deadline.
  if (!run || (isTerminal(run.status) && run.status !== 'lost')) return;
  const joined = ctx.active.get(runId);
  if (joined) {
    // This process runs the run's current attempt: the job joins it.
    if (joined.attempt >= currentAttempt(run)) return joined.done;
    // It runs an attempt the run has moved past (declared lost while this process was frozen
    // or cut off): that container is stopped before the current attempt may start here.
    joined.cancel.abort(DEPOSED);
    await joined.done.catch(() => undefined);
    run = await ctx.store.get(runId);
    if (!run || isTerminal(run.status)) return;
  }
  if (run.status !== 'queued') return watchRedelivered(ctx, run, job);
  // Not before its retry is due: a late redelivery of the previous attempt's job meets the
  // run queued again, and a lost attempt's retry waits out the lost container's deadline.
  if (run.retryAt !== undefined && run.retryAt > Date.now()) {
    await sleep(run.retryAt - Date.now(), undefined, { signal: ctx.stopping }).catch(() => undefined);
    if (ctx.stopping.aborted) return;
    return runJob(ctx, runId, job);
  }

  // Not failed here: a daemon whose config lacks the task (a reload removed it, or its file
  // is older than a peer's) hands the job back for a daemon that can run it (workers.ts).
  const task = ctx.config.tasks[run.task];
  if (!task) throw new TaskNotConfigured(run.task);

  // The claim, exactly once per attempt: of all workers that may hold this job (BullMQ
  // delivers at least once, and a retry's job can meet a late redelivery of the last one),
  // only the one whose compare-and-set moves the run out of `queued`, at the attempt it
  // read, goes on to create a container. The token is this call's own, recorded by the same
  // script: if the connection drops after the script ran, ioredis resends it and the resend
  // is answered true for this token alone (claimRun-3.lua), so the winner is never told it
  // lost and the run never stays `starting` with no one to start it. Per call, not per
  // daemon: two deliveries of the job in this process still make one winner. Every later
  // write for the attempt names the token, so once another daemon takes the claim over
  // (adoption, or a declaration that this holder is dead), this one writes nothing.
  const attempt = currentAttempt(run);
  const claim = `${ctx.identity.daemonId}:a${attempt}:${randomUUID()}`;
  const claimedAt = Date.now();
  const claimed = await ctx.store.claim(runId, {
    attempt,
    token: claim,
    fields: {
      node: ctx.identity.node,
      daemon: ctx.identity.daemonId,
      image: task.image,
      memoryBytes: task.memoryBytes,
      // The latest its container can run to if it starts at all: other nodes that find this
      // daemon dead wait it out before they retry (redelivered.ts).
      deadline: claimedAt + START_BUDGET_MS + task.timeoutMs + task.killGraceMs,
      ...(job.id !== undefined && { job: job.id }),
    },
  });
  if (!claimed) return;

  const cancel = new AbortController();
  const done = execute(ctx, run, task, { attempt, claim, claimedAt }, cancel.signal).finally(() => ctx.active.delete(runId));
  ctx.active.set(runId, { done, cancel, attempt, claim });
  return done;
}

interface Held {
  readonly attempt: number;
  readonly claim: string;
  readonly claimedAt: number;
}

async function execute(ctx: RunContext, run: RunRecord, task: TaskConfig, held: Held, cancel: AbortSignal): Promise<void> {
  const log = ctx.logger.child({ runId: run.id, task: task.name, trigger: run.trigger });
  const fence = { attempt: held.attempt, claim: held.claim };
  // Read here, once the claim is held, not with the record: the payload is a key of its own
  // that only the container needs (redeliveries and watches never load it).
  const payload = await ctx.store.payload(run.id);
  const spec = specFor(ctx, payload === undefined ? run : { ...run, payload }, task);
  if (task.reuse && ctx.reuse)
    return invokeReused(ctx, run, task, spec, { ...fence, startBy: held.claimedAt + START_BUDGET_MS, cancel, log });
  // A warm instance of the task here, if one is ready: its container is created and started
  // already, so the run skips both. Taken once, by this run only (take() hands it out once).
  const instance = ctx.warm?.take(task);
  let prepared: PreparedRun | undefined;
  if (instance) {
    const warm = await deliverWarm(ctx, run, task, spec, instance, held, log);
    if (warm === 'gone') return;
    prepared = warm;
  }
  if (!prepared) {
    const cold = await startCold(ctx, run, task, spec, held, log);
    if (cold === 'gone') return;
    prepared = cold;
  }
  const removeContainer = () => ctx.runtime.remove(prepared.containerId).catch((err) => log.error({ err }, 'could not remove container'));
  const startedAt = Date.now();
  // Fenced by the claim: a daemon deposed between the check and the start learns it here and
  // stops the container at once, so it never runs beside the attempt of whoever holds the
  // run now. The same for a warm delivery: its command started at deliver().
  const started = await ctx.store.fencedTransition(run.id, MOVES.run.to, {
    from: MOVES.run.from,
    ...fence,
    fields: { containerId: prepared.containerId, startedAt, deadline: startedAt + task.timeoutMs + task.killGraceMs },
  });
  if (!started) {
    log.warn('the claim on the run was lost as its container started: stopping it');
    await removeContainer();
    return;
  }
  // A retry is due at retryAt, not when the run was first made.
  const queuedAt = held.attempt > 1 && run.retryAt !== undefined ? run.retryAt : run.createdAt;
  ctx.events.emit('run:started', { runId: run.id, task: task.name, containerId: prepared.containerId, startedAt, queuedAt });
  log.info({ containerId: prepared.containerId.slice(0, 12), warm: instance !== undefined && 'instance' in prepared }, 'run started');
  // waitAndFinish removes the container itself; only a failure inside it leaves that to us.
  await waitAndFinish(ctx, prepared, task, { ...fence, cancel, log }).catch(async (err) => {
    await removeContainer();
    throw err;
  });
}

/** Still ours? If this daemon was deposed meanwhile, or the start budget it announced is spent, nothing is started. */
async function stillHeld(ctx: RunContext, runId: string, held: Held): Promise<{ ok: boolean; status?: string }> {
  const now = await ctx.store.get(runId);
  const ok = !!now && now.claim === held.claim && currentAttempt(now) === held.attempt && Date.now() <= held.claimedAt + START_BUDGET_MS;
  return { ok, status: now?.status };
}

/** Creates and starts the run's own container; 'gone' when the run was ended here (failed to start) or is no longer ours. */
async function startCold(
  ctx: RunContext,
  run: RunRecord,
  task: TaskConfig,
  spec: RunSpec,
  held: Held,
  log: Logger,
): Promise<PreparedRun | 'gone'> {
  const fence = { attempt: held.attempt, claim: held.claim };
  let prepared: PreparedRun;
  try {
    prepared = await ctx.runtime.prepare(spec);
  } catch (err) {
    // Never log-and-drop: a run that could not start is recorded as failed with the reason.
    const reason = describeFailure(err as RunFailedToStartLike);
    log.warn({ reason }, 'run could not be created');
    await finish(ctx, run.id, task, { outcome: 'failed', reason, logTail: '', logBytes: 0 }, fence);
    return 'gone';
  }
  // After prepare, not before: prepare waits for an engine that is coming back, so the
  // engine answers now and the leftovers can be found.
  await removeEarlierAttempts(ctx, run.id, held.attempt, log);
  const removeContainer = () => ctx.runtime.remove(prepared.containerId).catch((err) => log.error({ err }, 'could not remove container'));
  // Creating can take long (an engine coming back): checked after it, right before the start.
  const now = await stillHeld(ctx, run.id, held);
  if (!now.ok) {
    log.warn(
      { status: now.status },
      'the claim on the run was lost (or its start budget spent) before its container started: not starting it',
    );
    await removeContainer();
    return 'gone';
  }
  try {
    await ctx.runtime.start(prepared);
  } catch (err) {
    const reason = describeFailure(err as RunFailedToStartLike);
    log.warn({ reason }, 'run could not be started');
    await removeContainer();
    await finish(ctx, run.id, task, { outcome: 'failed', reason, logTail: '', logBytes: 0 }, fence);
    return 'gone';
  }
  return prepared;
}

/**
 * Hands the run to a warm instance: the same claim check as a cold start, right before the
 * delivery (which is the start). A delivery the runtime refuses (RunFailedToStart: the
 * instance no longer waits, or does not fit) ran nothing, so the run goes cold (undefined).
 * Exactly one run per instance: the pool handed it to this run alone, and it is delivered
 * once or retired.
 */
async function deliverWarm(
  ctx: RunContext,
  run: RunRecord,
  task: TaskConfig,
  spec: RunSpec,
  instance: WarmInstance,
  held: Held,
  log: Logger,
): Promise<DeliveredRun | undefined | 'gone'> {
  const pool = ctx.warm!;
  await removeEarlierAttempts(ctx, run.id, held.attempt, log);
  const now = await stillHeld(ctx, run.id, held);
  if (!now.ok) {
    log.warn({ status: now.status }, 'the claim on the run was lost (or its start budget spent) before its delivery: not delivering it');
    pool.retire(instance, 'its run was taken over before the delivery');
    return 'gone';
  }
  try {
    return await pool.deliver(instance, spec);
  } catch (err) {
    if (!(err instanceof RunFailedToStart)) throw err;
    log.warn({ reason: err.message, instanceId: instance.instanceId }, 'the warm instance refused the run; starting it cold');
    pool.retire(instance, 'it refused a delivery');
    return undefined;
  }
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
  /** The claim this process holds on the attempt: every write names it. */
  readonly claim: string;
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
  const { attempt, claim, cancel, log, deadline } = opts;
  let writing: Promise<void> = Promise.resolve();
  const live = new LogPublisher(ctx.redis, prepared.runId, attempt);
  // The task's secrets are masked before any output reaches Redis (runs/secret-mask.ts).
  const mask = new OutputMask(Object.values(task.secrets), new TailBuffer());
  const result = mask.result(
    await ctx.runtime.wait(prepared, {
      cancel,
      deadline,
      // Writes are chained so an older tail can never land after a newer one; each is announced
      // to live followers only once stored (runs/log-stream.ts).
      onOutput: (rawTail, rawEnd) => {
        const { text: tail, end: endOffset } = mask.tailFor(rawTail, rawEnd);
        // Fenced by the attempt and the claim: once the run has moved on or another daemon holds
        // it (this process was frozen or cut off meanwhile), the tail is not this one's to write.
        writing = writing
          .then(() => ctx.store.setLogTail(prepared.runId, tail, { attempt, bytes: endOffset, claim }))
          .then(async (written) => void (written && (await live.tailWritten(endOffset))))
          .catch(() => undefined);
      },
      onLog: (rawChunk, rawOffset) => {
        const masked = mask.chunk(rawChunk, rawOffset);
        if (masked) live.chunk(masked.offset, masked.bytes);
      },
    }),
  );
  await writing;
  await live.close();
  await ctx.runtime.remove(prepared.containerId).catch((err) => log.error({ err }, 'could not remove container'));
  // A run whose record Redis lost meanwhile (emptied, failed over) is recorded again first,
  // with this holder's claim, so its end is not dropped.
  await recordAgainIfLost(ctx, prepared, { attempt, claim }, result.startedAt);
  const status = await finish(ctx, prepared.runId, task, result, { attempt, claim });
  log.info({ status, exitCode: result.exitCode, reason: result.reason }, 'run finished');
}

/** Payloads up to this size are also passed as RUNLET_PAYLOAD. */
export const ENV_PAYLOAD_MAX_BYTES = 32 * 1024;

export function specFor(ctx: RunContext, run: RunRecord, task: TaskConfig): RunSpec {
  const env: Record<string, string> = {
    ...task.env,
    ...task.secrets,
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
