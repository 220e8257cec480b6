import { Queue, type ConnectionOptions } from 'bullmq';
import { BULL_PREFIX } from '../runs/keys.js';

/** The job a queue carries: the run and its task. The run record in Redis is the truth. */
export interface RunJobData {
  runId: string;
  /** Which task's limits admit it on a node (a job of an older version may lack it: the record says). */
  task?: string;
}

/**
 * The job id of a run's attempt: the run id for the first (so a re-added first job is a
 * duplicate BullMQ ignores), `<runId>-a<n>` for retry n. Deterministic, so the retry job
 * of an attempt can be added any number of times and exists once. (BullMQ refuses ':'.)
 */
export function jobIdFor(runId: string, attempt: number): string {
  return attempt <= 1 ? runId : `${runId}-a${attempt}`;
}

/** The BullMQ queue of a pool's runs (BullMQ refuses ':' in a queue name). */
export function queueNameOf(pool: string): string {
  return `pool.${pool}`;
}

/** A finished job is kept this long so a re-added job id stays a duplicate meanwhile. */
export const KEEP_COMPLETED = { age: 3600, count: 1000 } as const;
export const KEEP_FAILED = { age: 24 * 3600, count: 1000 } as const;

/**
 * One BullMQ queue per pool: a daemon's queue connections do not grow with its tasks. A task's cluster-wide limit is not the queue's business: only
 * runs that hold one of their task's slots are added (gate.ts).
 */
export class PoolQueues {
  private readonly queues = new Map<string, Queue<RunJobData>>();

  constructor(
    /** Where BullMQ connects; each queue has a connection of its own. */
    private readonly connection: ConnectionOptions,
  ) {}

  /** Adds the job of a run that holds its task's slot; a job id that exists is a duplicate BullMQ ignores. */
  async add(pool: string, data: RunJobData, jobId: string, delayMs = 0): Promise<void> {
    await this.get(pool).add('run', data, { jobId, ...(delayMs > 0 && { delay: delayMs }) });
  }

  get(pool: string): Queue<RunJobData> {
    let q = this.queues.get(pool);
    if (!q) {
      q = new Queue<RunJobData>(queueNameOf(pool), {
        connection: this.connection,
        prefix: BULL_PREFIX,
        // Records keep history; the queue keeps only what is needed to dedupe a
        // re-added job id for a while.
        defaultJobOptions: { removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED },
      });
      q.on('error', () => undefined);
      this.queues.set(pool, q);
    }
    return q;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
