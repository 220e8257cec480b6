import type { Logger } from 'pino';
import type { RunStore } from './store.js';

/** How often each daemon deletes runs past `retention.maxAge`, unless told otherwise. */
export const RETENTION_SWEEP_MS = 10 * 60_000;

/**
 * Retention by age, on a timer. Trimming when a run ends covers busy tasks; this covers the
 * rest: a task that never runs again (or was removed from the config) still ages out.
 * Every daemon sweeps; the script deletes a run once, and a second sweep finds nothing.
 */
export function startRetentionSweep(
  store: RunStore,
  /** Read at each sweep, so a reloaded `retention.maxAge` applies; undefined: nothing to sweep. */
  maxAge: () => number | undefined,
  logger: Logger,
  everyMs = RETENTION_SWEEP_MS,
): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    const maxAgeMs = maxAge();
    if (maxAgeMs === undefined) return;
    running = store.trimAged(maxAgeMs).then(
      (deleted) => {
        if (deleted > 0) logger.info({ deleted, maxAgeMs }, 'deleted runs older than retention.maxAge');
      },
      (err) => logger.warn({ err }, 'retention sweep failed; trying again later'),
    );
  };
  sweep();
  const timer = setInterval(sweep, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
