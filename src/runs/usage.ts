import type { Usage } from './types.js';

/**
 * What a run reserved: container-seconds (wall time it ran) and GB-seconds (memory limit
 * in GiB × those seconds, as AWS Lambda bills). The limit, not the peak, is what a
 * one-off container holds back from its neighbours, so that is what is counted.
 */
/** An attempt that never ran a container reserved nothing. */
export const NO_USAGE: Usage = Object.freeze({ containerSeconds: 0, gbSeconds: 0 });

export function usageOf(startedAt: number | undefined, finishedAt: number | undefined, memoryBytes: number): Usage {
  if (startedAt === undefined || finishedAt === undefined || finishedAt < startedAt) {
    return { containerSeconds: 0, gbSeconds: 0 };
  }
  const containerSeconds = (finishedAt - startedAt) / 1000;
  return {
    containerSeconds: round(containerSeconds),
    gbSeconds: round((memoryBytes / 2 ** 30) * containerSeconds),
  };
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/** The usage of a run's attempts added up: a retried run counts every container it ran. */
export function addUsage(a: Usage | undefined, b: Usage): Usage {
  if (!a) return b;
  return { containerSeconds: round(a.containerSeconds + b.containerSeconds), gbSeconds: round(a.gbSeconds + b.gbSeconds) };
}
