import { setTimeout as sleep } from 'node:timers/promises';
import { currentAttempt, isTerminal, type RunRecord } from '../runs/types.js';
import { LABEL_RUN, nodeLabels, parseRunLabels } from '../runtime/labels.js';
import { markLost } from './attempt-end.js';
import { settleWarm } from './settle-warm.js';
import type { JobHandle, RunContext } from './context.js';
import { isDaemonAlive } from './identity.js';

/**
 * A job delivered again although its run has left `queued`: the worker that held it stopped
 * renewing its lock (its daemon died, froze, or was cut off from Redis, or it stopped and
 * left the run to its successor). Nothing is started here; what happens depends on the
 * holder of the run's claim and on where its container is:
 *
 * - The holder is alive: it will record the outcome itself. A redelivery of the very job it
 *   took the run under stands in for it until then, so the task's cluster-wide slot (BullMQ's
 *   global concurrency counts active jobs) stays taken while the container runs; any other
 *   job of the run has nothing to hold.
 * - The holder is dead and the run was on this node: the container, if any, is on this
 *   engine. A running one is adopted by the reconciler (settle.ts, a compare-and-set on the
 *   claim) and watched like any other; none at all means the attempt is lost, and its retry
 *   may start at once.
 * - The holder is dead and the run was on another node: its container is out of reach and
 *   may still be running (a frozen or partitioned host looks dead from here). The attempt is
 *   declared lost at once (a compare-and-set on the claim read, so an adoption that got there
 *   first wins), but its retry starts only after the container's deadline (start + timeout +
 *   kill grace), when it is surely gone: at most one container of a run runs at any instant.
 *   This job holds the task's slot until then.
 */
export async function watchRedelivered(ctx: RunContext, first: RunRecord, job: JobHandle): Promise<void> {
  const standsIn = first.job === undefined || job.id === undefined || first.job === job.id;
  let run: RunRecord | undefined = first;
  let released = false;
  const watchOnly = () => {
    if (released) return;
    released = true;
    job.release?.();
  };
  while (run && !ctx.stopping.aborted) {
    if (run.status === 'queued' || (isTerminal(run.status) && run.status !== 'lost')) return;
    const attempt = currentAttempt(run);
    if (run.status === 'lost') {
      // Declared lost (here or by another daemon) while its container may still run: the
      // slot stays taken until the deadline.
      if (standsIn && run.deadline !== undefined && run.deadline > Date.now()) {
        watchOnly();
        await pause(ctx, run.deadline - Date.now());
      }
      return;
    }
    if (await isDaemonAlive(ctx.redis, run.daemon, ctx.identity.node)) {
      if (!standsIn) return;
      watchOnly();
      await pause(ctx, ctx.leaseMs / 3);
    } else if (run.node === ctx.identity.node) {
      const containers = await ctx.runtime.list({ ...nodeLabels(ctx.identity.clusterId, ctx.identity.node), [LABEL_RUN]: run.id });
      const mine = containers.filter((c) => parseRunLabels(c.labels).attempt === attempt);
      if (mine.length === 0) {
        // Nothing on this engine labelled with the run: it never started, is gone, or was
        // delivered to a warm instance (whose labels name no run). Such an instance of a dead
        // daemon is removed first, so its command is stopped before the attempt is declared
        // lost and a retry may start: never two containers of the run at once.
        await settleWarm(ctx);
        await markLost(ctx, run, attempt, `the daemon running it on this node stopped while the run was ${run.status}`, {
          claim: run.claim,
          // `starting` with no container of it on this engine: it was never created, so never ran.
          neverStarted: run.status === 'starting',
        });
        return;
      }
      // Its container is here: the reconciler adopts it (or start-up settling did already).
      if (!standsIn) return;
      watchOnly();
      await pause(ctx, ctx.leaseMs / 3);
    } else {
      const deadline = run.deadline;
      // The retry's own record says when it starts (retries.ts: "retrying in …").
      const reason = `the daemon running it on node "${run.node}" stopped answering while the run was ${run.status}`;
      const lost = await markLost(ctx, run, attempt, reason, { claim: run.claim, notBefore: deadline });
      if (lost && standsIn && deadline !== undefined && deadline > Date.now()) {
        watchOnly();
        await pause(ctx, deadline - Date.now());
      }
      return;
    }
    run = await ctx.store.get(first.id);
  }
  // Stopping: give the job up without completing it (so its slot is not freed early); its
  // lock lapses and another node's worker takes it and watches on.
  if (ctx.stopping.aborted) {
    watchOnly();
    await new Promise(() => undefined);
  }
}

/** Waits `ms`, or less when the daemon stops. */
async function pause(ctx: RunContext, ms: number): Promise<void> {
  await sleep(Math.max(0, ms), undefined, { signal: ctx.stopping }).catch(() => undefined);
}
