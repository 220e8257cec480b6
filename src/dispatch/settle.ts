import type { RunContext } from './run-job.js';
import { markLost, waitAndFinish } from './run-job.js';
import { recordAgainFromContainer } from './orphans.js';
import { isDaemonAlive } from './identity.js';
import type { TaskConfig } from '../config/types.js';
import { nodeLabels, parseRunLabels } from '../runtime/labels.js';
import { currentAttempt } from '../runs/types.js';
import type { TaskWorkers } from './workers.js';

/**
 * At start-up: containers labelled for this node and cluster that a previous process left
 * behind. Finished ones get their outcome recorded and are removed; running ones are
 * adopted (waited on, with their original deadline) so their outcome is recorded too. A
 * container whose daemon is still alive belongs to that daemon (two daemons may share one
 * engine) and is left alone. Each one waited on holds its room in this node's admission
 * (`room`) until it ends, as a run taken from the queue would.
 */
export async function settleLeftovers(
  ctx: RunContext,
  room: Pick<TaskWorkers, 'holdUntil'>,
): Promise<{ adopted: number; settled: number; removed: number }> {
  const { identity, runtime, store, logger } = ctx;
  const containers = await runtime.list(nodeLabels(identity.clusterId, identity.node));
  let adopted = 0;
  let settled = 0;
  let removed = 0;
  for (const c of containers) {
    const { daemon: owner, attempt, deadline } = parseRunLabels(c.labels);
    if (owner && owner !== identity.daemonId && (await isDaemonAlive(ctx.redis, owner))) continue;
    if (ctx.active.has(c.runId)) continue;
    // A started container with no record: Redis lost it (emptied, failed over); recorded again from the labels and adopted.
    const run = (await store.get(c.runId)) ?? (await recordAgainFromContainer(ctx, c));
    const task: TaskConfig | undefined = run ? ctx.config.tasks[run.task] : undefined;
    // A container of an attempt the run has moved past (that attempt was declared lost and
    // retried meanwhile): its outcome is no longer the run's to record.
    const stale = run !== undefined && attempt < currentAttempt(run);
    if (!run || !task || c.startedAt === undefined || stale) {
      // No record (trimmed), a task no longer configured, a stale attempt, or a container
      // that never started: nothing to wait for.
      if (run && !c.startedAt && !stale) await markLost(ctx, run, attempt, 'the daemon stopped before the container started');
      if (stale)
        logger.info(
          { runId: run.id, containerId: c.containerId.slice(0, 12), attempt },
          'removing a container of an attempt the run has moved past',
        );
      await runtime.remove(c.containerId);
      removed++;
      continue;
    }
    const log = logger.child({ runId: run.id, task: run.task, trigger: run.trigger });
    log.info(
      { containerId: c.containerId.slice(0, 12), running: c.running },
      c.running ? 'adopting a running container left by a previous process' : 'settling a finished container left by a previous process',
    );
    const prepared = runtime.adopt(c, {
      runId: run.id,
      task: task.name,
      attempt,
      labels: c.labels,
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
    const done = waitAndFinish(ctx, prepared, task, { attempt, cancel: cancel.signal, log, deadline })
      .catch(async (err) => {
        log.error({ err }, 'could not settle a left-over container');
        await runtime.remove(c.containerId).catch(() => undefined);
      })
      .finally(() => ctx.active.delete(run.id));
    ctx.active.set(run.id, { done, cancel });
    room.holdUntil(run.id, task, done);
    if (c.running) adopted++;
    else {
      settled++;
      await done;
    }
  }
  return { adopted, settled, removed };
}
