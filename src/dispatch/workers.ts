import { WaitingError, Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { RunletConfig, TaskConfig } from '../config/types.js';
import { BULL_PREFIX } from '../runs/keys.js';
import type { RunletEvents } from '../runs/events.js';
import type { NodeAdmission } from './admission.js';
import { TaskNotConfigured } from './errors.js';
import type { RunJobData } from './queues.js';
import type { JobHandle } from './context.js';

/**
 * BullMQ's answer when a job's keys are gone as it finishes: Redis was emptied (or failed
 * over) while the run ran. The run's record is what counts, and it is recorded (again, from
 * the container, if Redis lost it: orphans.ts); the job has nothing left to complete.
 */
const JOB_GONE = "a run's queue job was gone from redis when the run ended (redis emptied or failed over); its outcome is in its record";
function jobGone(err: Error): boolean {
  return /^Missing key for job /.test(err.message);
}

/** Hears why this node leaves a task's runs in the queue; never awaited, so it can't slow a worker. */
export interface WaitListener {
  /** The node stopped fetching the task's runs for `reason`, or (undefined) fetches them again. */
  taskBlocked(task: string, reason: string | undefined): void;
  /** A fetched run was handed back for `reason` (two workers raced for the last room). */
  runRefused(runId: string, task: string, reason: string): void;
}

/**
 * One BullMQ worker per task on this node. A job completes only after its run's outcome is
 * recorded (the processor awaits the whole run), so a node that dies mid-run leaves the
 * job to stalled-job detection rather than losing it.
 *
 * Admission is decided before a job is taken, not after: a task's worker is paused on this
 * node while a run of the task would not fit here (pool or memory budget), so the job stays
 * in the queue for a node that has room, and an idle daemon with waiting runs does no work
 * at all. The task's cluster-wide limit is BullMQ's global concurrency on its queue.
 */
export class TaskWorkers {
  private readonly workers = new Map<string, Worker<RunJobData>>();
  private stopping = false;
  /** Jobs being processed here, from fetch to completion (a run may not be claimed yet). */
  private readonly inFlight = new Set<Promise<void>>();
  /** Jobs whose keys were gone when their run ended, already logged (JOB_GONE). */
  private readonly saidGone = new Set<string>();
  /** The reason each task is paused for here, as last told to `waits`. */
  private readonly blocked = new Map<string, string>();
  /** Workers of tasks a reload removed, closing once their runs in progress have ended. */
  private readonly retiring = new Set<Worker<RunJobData>>();

  constructor(
    private readonly connection: ConnectionOptions,
    /** Read at each use (a LiveConfig view in the daemon): a reload is seen at the next fetch. */
    private readonly config: RunletConfig,
    private readonly admission: NodeAdmission,
    private readonly process: (runId: string, job: JobHandle) => Promise<void>,
    private readonly logger: Logger,
    /** How long a silent node keeps its runs' jobs before they are delivered again. */
    private readonly stalledMs = 30_000,
    /**
     * `waits` is told why this node does not take a task's runs, for "why does this run
     * wait" (ops/waiting.ts); `events` feeds the admission-refusal counter (runs/metrics.ts).
     */
    private readonly observers: { readonly waits?: WaitListener; readonly events?: RunletEvents } = {},
  ) {}

  /** Resolves once every worker is connected: a daemon is ready only when it can take jobs. */
  async start(tasks: readonly TaskConfig[]): Promise<void> {
    for (const task of tasks) {
      if (this.workers.has(task.name)) continue;
      const worker = new Worker<RunJobData>(
        task.name,
        (job, token) => this.take(task.name, job.data.runId, job.id, () => job.moveToWait(token)),
        {
          connection: this.connection,
          prefix: BULL_PREFIX,
          // Never more at once on this node than the task's pool allows.
          concurrency: this.concurrencyOf(task),
          // A run's outcome is in its record; the job needs no second copy.
          removeOnComplete: { age: 3600, count: 1000 },
          removeOnFail: { age: 24 * 3600, count: 1000 },
          // A run holds its job for as long as its container runs; the lock is renewed every
          // lockDuration/2, and only a dead (or frozen) daemon lets it lapse.
          lockDuration: this.stalledMs,
          stalledInterval: this.stalledMs,
          maxStalledCount: 2,
        },
      );
      worker.on('error', (err) => {
        if (!jobGone(err)) this.logger.error({ err, task: task.name }, 'queue worker error');
        // BullMQ reports it more than once; once is the news.
        else if (!this.saidGone.has(err.message)) {
          if (this.saidGone.size >= 1000) this.saidGone.clear();
          this.saidGone.add(err.message);
          this.logger.warn({ task: task.name, detail: err.message }, JOB_GONE);
        }
      });
      worker.on('failed', (job, err) =>
        this.logger.error({ err, task: task.name, runId: job?.data.runId }, 'run job failed inside runlet'),
      );
      this.workers.set(task.name, worker);
    }
    await Promise.all([...this.workers.values()].map((w) => w.waitUntilReady()));
    this.refresh();
  }

  private concurrencyOf(task: TaskConfig): number {
    return this.config.pools[task.pool]?.concurrency ?? 1;
  }

  /**
   * After a reload: a worker for each task the config gained, none for those it lost, each
   * at its pool's concurrency now. A removed task's worker fetches nothing more and closes
   * once its runs in progress have ended (they keep their job locks until then); a job it
   * fetched meanwhile goes back to the queue (see `take`).
   */
  async sync(): Promise<void> {
    for (const [name, worker] of this.workers) {
      const task = this.config.tasks[name];
      if (task) {
        if (worker.concurrency !== this.concurrencyOf(task)) worker.concurrency = this.concurrencyOf(task);
        continue;
      }
      this.workers.delete(name);
      if (this.blocked.delete(name)) this.observers.waits?.taskBlocked(name, undefined);
      this.retiring.add(worker);
      void worker
        .close()
        .catch((err) => this.logger.warn({ err, task: name }, 'closing the worker of a removed task failed'))
        .finally(() => this.retiring.delete(worker));
    }
    await this.start(Object.values(this.config.tasks));
  }

  private take(name: string, runId: string, jobId: string | undefined, handBack: () => Promise<unknown>): Promise<void> {
    let untrack = () => {};
    const work = this.takeAndRun(name, runId, jobId, handBack, () => untrack());
    untrack = this.track(work);
    return work;
  }

  private async takeAndRun(
    name: string,
    runId: string,
    jobId: string | undefined,
    handBack: () => Promise<unknown>,
    untrack: () => void,
  ): Promise<void> {
    // Looked up at each fetch: a run is admitted with the task's limits of now.
    const task = this.config.tasks[name];
    if (this.stopping || !task) {
      // Fetched as the daemon stops: hand it back rather than hold it, or its active job
      // would keep the task's cluster-wide slot until stalled-job detection frees it. The
      // same for a task a reload just removed: a daemon whose config has it takes the job.
      await handBack();
      throw new WaitingError();
    }
    if (!this.admission.reserve(runId, task)) {
      // AdmissionDeferred: another worker of this node took the last room between our fetch
      // and now. The job goes back to the front of its queue for whichever node has room.
      const refused = this.admission.whyNot(task) ?? 'no room on this node';
      this.observers.waits?.runRefused(runId, task.name, refused);
      this.observers.events?.emit('admission:refused', { task: task.name, pool: task.pool, reason: refused });
      await handBack();
      this.refresh();
      throw new WaitingError();
    }
    this.refresh();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.admission.release(runId);
      this.refresh();
    };
    try {
      // `release`: the job only watches a run held elsewhere (dispatch/redelivered.ts), so its
      // room goes back to the node and a graceful stop does not wait for it.
      await this.process(runId, {
        id: jobId,
        release: () => {
          release();
          untrack();
        },
      });
    } catch (err) {
      if (!(err instanceof TaskNotConfigured)) throw err;
      // Removed by a reload between the fetch and the claim: never failed by a daemon that
      // does not know the task (a newer config elsewhere may), only handed back.
      await handBack();
      throw new WaitingError();
    } finally {
      release();
    }
  }

  /**
   * A run this node already runs without having taken its job (adopted at start-up by
   * dispatch/settle.ts) holds its room as a taken job does, until `ended`: else new runs
   * would start beside it past the pool's and the node's budgets. Its job, if delivered
   * here again meanwhile, finds the room held under the same run id and joins the run.
   */
  holdUntil(runId: string, task: TaskConfig, ended: Promise<unknown>): void {
    this.admission.hold(runId, task);
    this.refresh();
    const free = () => {
      this.admission.release(runId);
      this.refresh();
    };
    void ended.then(free, free);
  }

  /** Counts `work` as in progress here until it settles, or until the returned function says it is not. */
  private track(work: Promise<void>): () => void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    const untrack = () => void this.inFlight.delete(settled);
    void settled.then(untrack);
    return untrack;
  }

  /** Resolves when every job in progress here has finished, or after `ms`. */
  async drain(ms: number): Promise<number> {
    const pending = [...this.inFlight];
    if (pending.length === 0) return 0;
    await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, ms).unref())]);
    return this.inFlight.size;
  }

  /** Shutdown, first step: fetch nothing more, and hand back what arrives anyway. */
  async stopTaking(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.workers.values(), ...this.retiring].map((w) => w.pause(true)));
  }

  /** Pauses the workers of tasks that would not fit on this node now; resumes the rest. */
  refresh(): void {
    if (this.stopping) return;
    for (const [name, worker] of this.workers) {
      const task = this.config.tasks[name];
      if (!task || worker.closing) continue;
      const why = this.admission.whyNot(task);
      const fits = why === undefined;
      if (this.blocked.get(name) !== why) {
        // Counted when the task becomes blocked, not each time the budget's wording changes.
        if (why !== undefined && !this.blocked.has(name))
          this.observers.events?.emit('admission:refused', { task: name, pool: task.pool, reason: why });
        if (why === undefined) this.blocked.delete(name);
        else this.blocked.set(name, why);
        this.observers.waits?.taskBlocked(name, why);
      }
      if (fits && worker.isPaused()) worker.resume();
      else if (!fits && !worker.isPaused()) void worker.pause(true).catch(() => undefined);
    }
  }

  /** Stops taking new jobs; with `force`, does not wait for the ones in progress. */
  async close(force = false): Promise<void> {
    await Promise.allSettled([...this.workers.values(), ...this.retiring].map((w) => w.close(force)));
    this.workers.clear();
  }
}
