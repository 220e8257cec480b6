import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { QueueTriggerConfig, TaskConfig } from '../../config/types.js';
import type { Redis } from 'ioredis';
import { connect, describeTarget, redisOptions, type RedisTarget } from '../../lib/redis.js';
import type { Trigger, TriggerDeps } from '../types.js';
import { handleSourceJob, type QueueJobResult, type SourceJobContext } from './job.js';

/** As runlet's own run jobs (RUNLET_STALLED_MS): how long a silent daemon keeps the source jobs it holds. */
const DEFAULT_STALLED_MS = 30_000;
/** Redelivery is harmless by construction (see handleSourceJob), so a job may stall as often as daemons die. */
const MAX_STALLED_COUNT = 1000;
/** A queue Redis that stays down would log an error on every reconnect attempt: once a minute is enough. */
const REPEAT_ERROR_AFTER_MS = 60_000;
/** worker.close(true) only disconnects, but a stop must never hang on a Redis that does not answer. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * `queue:` on a task: a BullMQ worker on the producers' queue, each job one run of the task
 * (see handleSourceJob for the job's life and the exactly-once argument).
 */
export class QueueTrigger implements Trigger {
  readonly name: string;
  private worker?: Worker<unknown, QueueJobResult>;
  /** Our own client on the queue's Redis until it first answers; see start(). */
  private probe?: Redis;
  private stopRequested = false;
  private markStopping!: () => void;
  private readonly stopping = new Promise<void>((resolve) => (this.markStopping = resolve));
  private markClosed!: () => void;
  private readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));
  private readonly target: RedisTarget;
  private readonly logger: Logger;
  private lastError?: { message: string; at: number; repeats: number };

  constructor(
    private readonly deps: TriggerDeps,
    private readonly task: TaskConfig,
    private readonly queue: QueueTriggerConfig,
  ) {
    this.name = `queue ${queue.name} → ${task.name}`;
    this.target = queue.redisUrl ? { url: queue.redisUrl } : deps.redisTarget;
    this.logger = deps.logger.child({ trigger: 'queue', task: task.name, queue: queue.name });
  }

  /**
   * Does not wait for the queue's Redis: one that is down must not hold up (or fail) the
   * daemon's start. The BullMQ worker is created only once that Redis has answered our own
   * client: a BullMQ connection that is closed while it has never been ready can reject
   * promises nobody awaits (an unhandled rejection ends a Node process) and its close may
   * never resolve (taskforcesh/bullmq#4656). Once a worker has been ready, BullMQ rides out
   * a Redis that goes away and comes back.
   */
  async start(): Promise<void> {
    const probe = connect(this.target, `runlet:queue-probe:${this.queue.name}`);
    this.probe = probe;
    probe.on('error', (err: Error) => this.reportError(err));
    probe.once('ready', () => {
      this.probe = undefined;
      probe.disconnect();
      if (!this.stopRequested) this.startWorker();
    });
  }

  private startWorker(): void {
    const stalledMs = this.deps.stalledMs ?? DEFAULT_STALLED_MS;
    const ctx: SourceJobContext = {
      deps: this.deps,
      task: this.task,
      queue: this.queue,
      logger: this.logger,
      stopping: this.stopping,
      isStopping: () => this.stopRequested,
      closed: this.closed,
    };
    const worker = new Worker<unknown, QueueJobResult>(this.queue.name, (job) => handleSourceJob(ctx, job), {
      connection: redisOptions(this.target),
      prefix: this.queue.prefix,
      concurrency: this.queue.concurrency,
      // A job is held until its run ends, however long; the worker renews the lock every
      // lockDuration/2, so only a dead or frozen daemon lets it lapse, and then the job is
      // delivered again (to whichever daemon's stalled check sees it first).
      lockDuration: stalledMs,
      stalledInterval: stalledMs,
      maxStalledCount: MAX_STALLED_COUNT,
      name: `runlet ${this.deps.identity.daemonId}`,
    });
    // BullMQ reconnects by itself (ioredis retries forever with maxRetriesPerRequest null);
    // a listener here keeps its connection errors from crashing the process.
    worker.on('error', (err) => this.reportError(err));
    worker.on('failed', (job, err) => {
      if (job && !this.stopRequested)
        this.logger.warn({ jobId: job.id, err: err.message }, 'queue job failed: its run did not succeed, or it was refused');
    });
    this.worker = worker;
    worker.waitUntilReady().then(
      () =>
        this.logger.info(
          { redis: describeTarget(this.target), prefix: this.queue.prefix, concurrency: this.queue.concurrency },
          'taking jobs from the queue',
        ),
      () => undefined,
    );
  }

  private reportError(err: Error): void {
    if (this.stopRequested) return;
    const now = Date.now();
    const last = this.lastError;
    if (last && last.message === err.message && now - last.at < REPEAT_ERROR_AFTER_MS) {
      last.repeats++;
      return;
    }
    this.lastError = { message: err.message, at: now, repeats: 0 };
    this.logger.error(
      { err, redis: describeTarget(this.target), ...(last?.message === err.message && { repeatedSinceLastLog: last.repeats }) },
      'queue trigger cannot use its queue; it keeps reconnecting, and jobs wait in the queue meanwhile',
    );
  }

  /**
   * Closes the worker without waiting for the jobs it holds (their runs may take hours).
   * Those jobs are neither completed nor failed: their locks lapse after stalledMs and the
   * stalled-job check delivers them again, to another daemon or this one restarted, whose
   * submit finds the same run by its dedupe key and waits for it. The runs themselves go on
   * regardless, as runlet's own jobs.
   */
  async stop(): Promise<void> {
    this.stopRequested = true;
    this.markStopping();
    this.probe?.disconnect();
    const worker = this.worker;
    if (worker) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        worker.close(true).catch((err) => this.logger.warn({ err }, 'closing the queue worker failed')),
        new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
    }
    this.markClosed();
  }
}
