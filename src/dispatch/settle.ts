import { randomUUID } from 'node:crypto';
import type { TaskConfig } from '../config/types.js';
import { nodeLabels, parseRunLabels } from '../runtime/labels.js';
import type { OwnedContainer } from '../runtime/types.js';
import { currentAttempt, isTerminal, MOVES } from '../runs/types.js';
import { markLost } from './attempt-end.js';
import type { RunContext } from './context.js';
import { isDaemonAlive } from './identity.js';
import { recordAgainFromContainer } from './orphans.js';
import { waitAndFinish } from './run-job.js';
import type { PoolWorkers } from './workers.js';

export interface Settled {
  readonly adopted: number;
  readonly settled: number;
  readonly removed: number;
}

/**
 * Containers labelled for this node and cluster whose daemon is gone: at start-up (a
 * previous process left them) and then periodically (the reconciler, reconcile.ts), so a
 * leftover is never kept until the next start. Finished ones get their outcome recorded and
 * are removed; running ones are adopted (waited on, with their original deadline) so their
 * outcome is recorded too. A container whose daemon is still alive belongs to that daemon
 * (two daemons may share one engine) and is left alone. Each one waited on holds its room in
 * this node's admission (`room`) until it ends, as a run taken from the queue would.
 */
export async function settleLeftovers(ctx: RunContext, room: Pick<PoolWorkers, 'holdUntil'>): Promise<Settled> {
  const { identity, runtime } = ctx;
  const containers = await runtime.list(nodeLabels(identity.clusterId, identity.node));
  const counts = { adopted: 0, settled: 0, removed: 0 };
  for (const c of containers) {
    const owner = parseRunLabels(c.labels).daemon;
    if (ctx.active.has(c.runId)) continue;
    if (owner && owner !== identity.daemonId && (await isDaemonAlive(ctx.redis, owner, identity.node))) continue;
    const did = await settleOne(ctx, room, c);
    counts[did]++;
  }
  return counts;
}

async function settleOne(ctx: RunContext, room: Pick<PoolWorkers, 'holdUntil'>, c: OwnedContainer): Promise<keyof Settled> {
  const { runtime, store, logger, identity } = ctx;
  const { attempt, deadline } = parseRunLabels(c.labels);
  // A started container with no record: Redis lost it (emptied, failed over); recorded again from the labels and adopted.
  const run = (await store.get(c.runId)) ?? (await recordAgainFromContainer(ctx, c));
  const task: TaskConfig | undefined = run ? ctx.config.tasks[run.task] : undefined;
  const remove = async (why: string) => {
    logger.info({ runId: c.runId, containerId: c.containerId.slice(0, 12), attempt, running: c.running }, why);
    await runtime.remove(c.containerId);
    return 'removed' as const;
  };
  // No record (trimmed) or a task no longer configured: nothing to record the outcome in.
  if (!run || !task) return remove('removing a left-over container whose run or task is gone');
  // An attempt the run has moved past (declared lost and retried meanwhile): its outcome is
  // no longer the run's to record, and it must not run beside the current attempt.
  if (attempt < currentAttempt(run)) return remove('removing a container of an attempt the run has moved past');
  if (isTerminal(run.status) && run.status !== 'lost') return remove('removing a left-over container of a run that has ended');
  if (c.startedAt === undefined) {
    await markLost(ctx, run, attempt, 'the daemon stopped before the container started', { claim: run.claim, neverStarted: true });
    return remove('removing a container that was never started');
  }
  // Adoption is a compare-and-set on the claim read here: of two daemons of this node
  // settling at once, or a settler and another node declaring the attempt lost, one wins,
  // and the dead holder, if it was only frozen, writes nothing when it wakes.
  const claim = `${identity.daemonId}:a${attempt}:${randomUUID()}`;
  if (!(await store.adopt(run.id, { attempt, expected: run.claim, claim, daemon: identity.daemonId }))) {
    const now = await store.get(run.id);
    if (now && currentAttempt(now) === attempt && now.claim !== run.claim && (await isDaemonAlive(ctx.redis, now.daemon, identity.node)))
      return 'settled'; // another daemon of this node adopted it first: it waits on it
    return remove('removing a left-over container whose attempt was ended or taken over meanwhile');
  }
  if (run.status === 'starting' && c.running)
    await store
      .fencedTransition(run.id, MOVES.run.to, { from: MOVES.run.from, attempt, claim, fields: { containerId: c.containerId } })
      .catch(() => undefined);
  const log = logger.child({ runId: run.id, task: run.task, trigger: run.trigger });
  log.info(
    { containerId: c.containerId.slice(0, 12), running: c.running },
    c.running ? 'adopting a running container left by a previous process' : 'settling a finished container left by a previous process',
  );
  const prepared = runtime.adopt(c, {
    runId: run.id,
    task: task.name,
    attempt,
    image: task.image,
    env: {},
    memoryBytes: task.memoryBytes,
    cpus: task.cpus,
    pids: task.pids,
    timeoutMs: task.timeoutMs,
    killGraceMs: task.killGraceMs,
  });
  const cancel = new AbortController();
  // waitAndFinish removes the container; only when it failed is removing left to us.
  const done = waitAndFinish(ctx, prepared, task, { attempt, claim, cancel: cancel.signal, log, deadline })
    .catch(async (err) => {
      log.error({ err }, 'could not settle a left-over container');
      await runtime.remove(c.containerId).catch(() => undefined);
    })
    .finally(() => ctx.active.delete(run.id));
  ctx.active.set(run.id, { done, cancel, attempt, claim });
  room.holdUntil(run.id, task, done);
  if (c.running) return 'adopted';
  await done;
  return 'settled';
}
