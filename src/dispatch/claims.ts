import type { RunContext } from './context.js';
import { DEPOSED } from './run-job.js';

/**
 * The holder's side of the fence: every so often (a third of the lease), this daemon reads
 * the claim on each attempt it runs, and stops the container of any whose claim another
 * daemon has taken over: the attempt was declared lost (this daemon was frozen or cut off
 * past its lease) or adopted. Its end would be refused anyway (endAttempt-7.lua); stopping
 * it at once means it does not run on beside the attempt of whoever holds the run now.
 * A record that is missing is left alone: Redis that came back empty is no reason to kill
 * a run (runs/epoch.ts), and the run's end recreates what is needed.
 */
export function watchClaims(ctx: RunContext): () => Promise<void> {
  let checking: Promise<void> = Promise.resolve();
  const check = async () => {
    const held = [...ctx.active.entries()];
    const now = await ctx.store.claims(held.map(([runId]) => runId));
    held.forEach(([runId, active], i) => {
      const record = now[i];
      if (!record || record.claim === undefined) return;
      if (record.claim !== active.claim || record.attempt !== active.attempt) {
        ctx.logger.warn({ runId, attempt: active.attempt }, DEPOSED);
        active.cancel.abort(DEPOSED);
      }
    });
  };
  const timer = setInterval(() => {
    checking = checking.then(check).catch((err) => ctx.logger.warn({ err }, 'could not check the claims on running attempts'));
  }, ctx.leaseMs / 3);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await checking;
  };
}
