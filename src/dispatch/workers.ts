import { Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import { BULL_PREFIX } from '../runs/keys.js';
import type { RunJobData } from './queues.js';

/** Runs on one node at once, per task, until the admission rules of pools and budgets take over. */
export const DEFAULT_NODE_CONCURRENCY = 4;

/**
 * One BullMQ worker per task on this node. A job completes only after its run's outcome is
 * recorded (the processor awaits the whole run), so a node that dies mid-run leaves the
 * job to stalled-job detection rather than losing it.
 */
export class TaskWorkers {
  private readonly workers = new Map<string, Worker<RunJobData>>();

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly process: (runId: string) => Promise<void>,
    private readonly logger: Logger,
    /** How long a silent node keeps its runs' jobs before they are delivered again. */
    private readonly stalledMs = 30_000,
  ) {}

  /** Resolves once every worker is connected: a daemon is ready only when it can take jobs. */
  async start(tasks: readonly string[]): Promise<void> {
    for (const task of tasks) {
      if (this.workers.has(task)) continue;
      const worker = new Worker<RunJobData>(task, async (job) => this.process(job.data.runId), {
        connection: this.connection,
        prefix: BULL_PREFIX,
        concurrency: DEFAULT_NODE_CONCURRENCY,
        // A run's outcome is in its record; the job needs no second copy.
        removeOnComplete: { age: 3600, count: 1000 },
        removeOnFail: { age: 24 * 3600, count: 1000 },
        // A run holds its job for as long as its container runs; the lock is renewed every
        // lockDuration/2, and only a dead (or frozen) daemon lets it lapse.
        lockDuration: this.stalledMs,
        stalledInterval: this.stalledMs,
        maxStalledCount: 2,
      });
      worker.on('error', (err) => this.logger.error({ err, task }, 'queue worker error'));
      worker.on('failed', (job, err) => this.logger.error({ err, task, runId: job?.data.runId }, 'run job failed inside runlet'));
      this.workers.set(task, worker);
    }
    await Promise.all([...this.workers.values()].map((w) => w.waitUntilReady()));
  }

  /** Stops taking new jobs; with `force`, does not wait for the ones in progress. */
  async close(force = false): Promise<void> {
    await Promise.allSettled([...this.workers.values()].map((w) => w.close(force)));
    this.workers.clear();
  }
}
