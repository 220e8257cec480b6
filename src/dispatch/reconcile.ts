import { LABEL_RUN, nodeLabels, parseRunLabels } from '../runtime/labels.js';
import { currentAttempt, type RunRecord } from '../runs/types.js';
import { markLost } from './attempt-end.js';
import type { RunContext } from './context.js';
import { isDaemonAlive } from './identity.js';
import { START_BUDGET_MS } from './run-job.js';
import { settleLeftovers } from './settle.js';
import { settleWarm } from './settle-warm.js';
import type { PoolWorkers } from './workers.js';

/**
 * The reconciler, on every node, every lease period: what start-up settling does once, and
 * what no queue job will do any more.
 *
 * 1. This node's containers whose daemon is gone are adopted or removed (settle.ts): a
 *    leftover is collected within a period, not at the next start, and an adopted container
 *    is waited on with the deadline on its label, so its timeout holds without its daemon.
 *    Warm and reusable containers whose daemon is gone are removed (settleWarm): they hold
 *    no run that could be re-attached.
 * 2. Runs `starting`/`running` whose holder is dead and that no job watches any more (the
 *    job was lost with a Redis failover, or completed by a watcher that gave up): on this
 *    node, with no container of the attempt on this engine, the attempt is lost now; on
 *    another node, once the attempt's deadline has passed (its container, if it still
 *    exists, has surely been stopped by then), the attempt is lost and retried at once.
 *    Each is a compare-and-set on the claim read and on the attempt being in progress, so
 *    two reconcilers, a watcher and an adopter racing end the attempt once: the claim
 *    fences an adopter, and the status (MOVES.lose: never from `lost`) the other
 *    declarers, which name the same dead holder's claim.
 * 3. Task slots held by runs that ended with no daemon reading their end (gate.ts sweep),
 *    and parked runs a raised limit now admits.
 * Kills that failed are retried by the runtime's stopper; the reconciler only finds what
 * nobody holds.
 */
export function startReconciler(ctx: RunContext, room: Pick<PoolWorkers, 'holdUntil'>, everyMs = ctx.leaseMs): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    const settled = await settleLeftovers(ctx, room);
    if (settled.adopted + settled.settled + settled.removed > 0)
      ctx.logger.info(settled, 'reconciler: settled containers whose daemon is gone');
    // Warm and reusable containers of a dead daemon of this node, every pass and not only at
    // start-up: with another daemon of the node already up, no start would ever come to remove
    // them, and a delivered one's command would run on after its run is declared lost below
    // (nothing on it names its run, so step 2 cannot see it). Before step 2, so the command is
    // stopped before its run is lost (and perhaps retried).
    const warmRemoved = await settleWarm(ctx);
    if (warmRemoved > 0) ctx.logger.info({ removed: warmRemoved }, 'reconciler: removed warm containers whose daemon is gone');
    const lost = await loseStranded(ctx);
    if (lost > 0) ctx.logger.warn({ lost }, 'reconciler: declared lost the attempts of runs whose daemon is gone');
    const freed = await ctx.gate.sweep();
    if (freed > 0) ctx.logger.warn({ freed }, 'reconciler: freed task slots of runs that ended while no daemon read their end');
  };
  const timer = setInterval(() => {
    if (ctx.stopping.aborted) return;
    running = running.then(tick).catch((err) => ctx.logger.warn({ err }, 'reconciler pass failed; the next one tries again'));
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** Step 2: the in-progress runs nobody holds any more. Returns how many attempts it ended. */
async function loseStranded(ctx: RunContext, now = Date.now()): Promise<number> {
  const { identity } = ctx;
  let lost = 0;
  for (const run of await ctx.store.list({ status: ['starting', 'running'], limit: 1000 })) {
    if (ctx.active.has(run.id) || (await isDaemonAlive(ctx.redis, run.daemon, ctx.identity.node))) continue;
    const attempt = currentAttempt(run);
    if (run.node === identity.node) {
      const containers = await ctx.runtime.list({ ...nodeLabels(identity.clusterId, identity.node), [LABEL_RUN]: run.id });
      if (containers.some((c) => parseRunLabels(c.labels).attempt === attempt)) continue; // settled above, next pass
      const neverStarted = run.status === 'starting';
      if (
        await markLost(ctx, run, attempt, `the daemon running it on this node is gone and its container with it`, {
          claim: run.claim,
          neverStarted,
        })
      )
        lost++;
    } else if (now > deadlineOf(ctx, run)) {
      const reason = `the daemon running it on node "${run.node}" is gone, and the attempt's deadline has passed`;
      if (await markLost(ctx, run, attempt, reason, { claim: run.claim })) lost++;
    }
  }
  return lost;
}

/** The attempt's deadline as recorded, or as it would have been for a run claimed before deadlines were. */
function deadlineOf(ctx: RunContext, run: RunRecord): number {
  if (run.deadline !== undefined) return run.deadline;
  const task = ctx.config.tasks[run.task];
  const budget = task ? task.timeoutMs + task.killGraceMs : 0;
  return (run.startedAt ?? run.updatedAt) + budget + START_BUDGET_MS;
}
