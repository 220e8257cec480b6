import { Queue, type ConnectionOptions } from 'bullmq';
import { BULL_PREFIX } from '../runs/keys.js';
import type { TaskConfig } from '../config/types.js';
import type { QueueCounts } from './policies.js';

/** The job a queue carries: only the run id. The run record in Redis is the truth. */
export interface RunJobData {
  runId: string;
}

/**
 * The job id of a run's attempt: the run id for the first (so a re-added first job is a
 * duplicate BullMQ ignores), `<runId>-a<n>` for retry n. Deterministic, so the retry job
 * of an attempt can be added any number of times and exists once. (BullMQ refuses ':'.)
 */
export function jobIdFor(runId: string, attempt: number): string {
  return attempt <= 1 ? runId : `${runId}-a${attempt}`;
}

/**
 * One BullMQ queue per task. Per-task queues let later rules act on one task cluster-wide
 * with BullMQ's own primitives (pause, global concurrency, counts of waiting jobs) instead
 * of scanning a shared queue.
 */
export class TaskQueues {
  private readonly queues = new Map<string, Queue<RunJobData>>();

  constructor(private readonly connection: ConnectionOptions) {}

  /**
   * The task limit is cluster-wide: BullMQ's global concurrency on the task's queue, set by
   * every daemon from the same config (idempotent, so daemons starting together agree).
   */
  async applyConcurrency(tasks: readonly TaskConfig[]): Promise<void> {
    for (const task of tasks) {
      if (task.overlap === 'allow') await this.get(task.name).removeGlobalConcurrency();
      else await this.get(task.name).setGlobalConcurrency(task.concurrency);
    }
  }

  /** Runs taking a slot and runs waiting for one, across the cluster (policies and gauges read it). */
  async counts(task: string): Promise<QueueCounts> {
    const c = await this.get(task).getJobCounts('active', 'waiting', 'prioritized', 'delayed', 'paused');
    return { active: c.active ?? 0, waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0) + (c.paused ?? 0) };
  }

  get(task: string): Queue<RunJobData> {
    let q = this.queues.get(task);
    if (!q) {
      q = new Queue<RunJobData>(task, {
        connection: this.connection,
        prefix: BULL_PREFIX,
        defaultJobOptions: {
          // Records keep history; the queue keeps only what is needed to dedupe a
          // re-added job id for a while.
          removeOnComplete: { age: 3600, count: 1000 },
          removeOnFail: { age: 24 * 3600, count: 1000 },
        },
      });
      q.on('error', () => undefined);
      this.queues.set(task, q);
    }
    return q;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
