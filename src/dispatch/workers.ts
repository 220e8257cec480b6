import { WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RunletConfig, TaskConfig } from '../config/types.js';
import { BULL_PREFIX, keys } from '../runs/keys.js';
import type { RunletEvents } from '../runs/events.js';
import type { NodeAdmission } from './admission.js';
import { TaskNotConfigured } from './errors.js';
import { KEEP_COMPLETED, KEEP_FAILED, queueNameOf, type RunJobData } from './queues.js';
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

/** How long a pool's worker that handed a run back waits before fetching again, unless a run here ends first. */
const HAND_BACK_PAUSE_MS = 1_000;

/** Per pool, its task with the smallest memory limit: what must fit for the pool's worker to fetch at all. */
function smallestTasks(config: RunletConfig): Map<string, TaskConfig> {
  const out = new Map<string, TaskConfig>();
  for (const task of Object.values(config.tasks)) {
    const best = out.get(task.pool);
    if (!best || task.memoryBytes < best.memoryBytes) out.set(task.pool, task);
  }
  return out;
}

/** Hears why this node leaves a task's runs in the queue; never awaited, so it can't slow a worker. */
export interface WaitListener {
  /** The node stopped fetching the pool's runs for `reason`, or (undefined) fetches them again. */
  poolBlocked(pool: string, reason: string | undefined): void;
  /** A fetched run was handed back for `reason` (two workers raced for the last room). */
  runRefused(runId: string, task: string, reason: string): void;
}

/**
 * One BullMQ worker per pool on this node, whatever the number of tasks: each holds two
 * connections (one blocking), so a daemon's connections follow its pools. A job completes only
 * after its run's outcome is recorded (the processor awaits the whole run), so a node that
 * dies mid-run leaves the job to stalled-job detection rather than losing it.
 *
 * Admission is decided before a job is taken where it can be: a pool's worker fetches at
 * most the pool's per-node concurrency at once, and is paused while not even the pool's
 * smallest run would fit the memory budgets here. A fetched run that does not fit (a bigger
 * one) goes back to the front of its queue for a node that has room, and this pool's worker
 * pauses until a run here ends (or a short while passes), so it does not fetch the same job
 * again and again. The task's cluster-wide limit is the gate's (gate.ts): only runs holding
 * a slot are in the queues.
 */
export class PoolWorkers {
  private readonly workers = new Map<string, Worker<RunJobData>>();
  private stopping = false;
  /** Jobs being processed here, from fetch to completion (a run may not be claimed yet). */
  private readonly inFlight = new Set<Promise<void>>();
  /** Jobs whose keys were gone when their run ended, already logged (JOB_GONE). */
  private readonly saidGone = new Set<string>();
  /** Why each pool's worker does not fetch here now, as last told to `waits`. */
  private readonly blocked = new Map<string, string>();
  /** The latest period each pool did not fetch, and why: a run queued before its end waited for admission. */
  private readonly lastBlock = new Map<string, { reason: string; until: number }>();
  /** Pools whose worker handed a run back, until a run here ends or `HAND_BACK_PAUSE_MS` pass. */
  private readonly handedBack = new Map<string, NodeJS.Timeout>();
  /** Workers of pools a reload removed, closing once their runs in progress have ended. */
  private readonly retiring = new Set<Worker<RunJobData>>();
  /** The smallest memory limit among each pool's tasks, as of the last start or sync. */
  private smallest = new Map<string, TaskConfig>();

  constructor(
    /** Where BullMQ connects: each pool's worker has its own connections (one of them blocking). */
    private readonly connection: ConnectionOptions,
    /** runlet's own connection, to read a run's task when an older job does not name it. */
    private readonly redis: Redis,
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
    private readonly observers: {
      readonly waits?: WaitListener;
      readonly events?: RunletEvents;
      /** A run of `task` took room here (warm instances are shed if the budgets are passed now). */
      readonly reserved?: (task: TaskConfig) => void;
    } = {},
  ) {}

  /** Resolves once every pool's worker is connected: a daemon is ready only when it can take jobs. */
  async start(): Promise<void> {
    this.smallest = smallestTasks(this.config);
    for (const pool of Object.values(this.config.pools)) {
      if (this.workers.has(pool.name)) continue;
      const worker = new Worker<RunJobData>(queueNameOf(pool.name), (job, token) => this.take(pool.name, job, token), {
        connection: this.connection,
        prefix: BULL_PREFIX,
        // Never more at once on this node than the pool allows.
        concurrency: pool.concurrency,
        // A run's outcome is in its record; the job needs no second copy.
        removeOnComplete: KEEP_COMPLETED,
        removeOnFail: KEEP_FAILED,
        // A run holds its job for as long as its container runs; the lock is renewed every
        // lockDuration/2, and only a dead (or frozen) daemon lets it lapse.
        lockDuration: this.stalledMs,
        stalledInterval: this.stalledMs,
        maxStalledCount: 2,
      });
      worker.on('error', (err) => {
        if (!jobGone(err)) this.logger.error({ err, pool: pool.name }, 'queue worker error');
        // BullMQ reports it more than once; once is the news.
        else if (!this.saidGone.has(err.message)) {
          if (this.saidGone.size >= 1000) this.saidGone.clear();
          this.saidGone.add(err.message);
          this.logger.warn({ pool: pool.name, detail: err.message }, JOB_GONE);
        }
      });
      worker.on('failed', (job, err) =>
        this.logger.error({ err, pool: pool.name, runId: job?.data.runId }, 'run job failed inside runlet'),
      );
      this.workers.set(pool.name, worker);
    }
    await Promise.all([...this.workers.values()].map((w) => w.waitUntilReady()));
    this.refresh();
  }

  /**
   * After a reload: a worker for each pool the config gained, none for those it lost, each
   * at its pool's concurrency now. A removed pool's worker fetches nothing more and closes
   * once its runs in progress have ended (they keep their job locks until then).
   */
  async sync(): Promise<void> {
    for (const [name, worker] of this.workers) {
      const pool = this.config.pools[name];
      if (pool) {
        if (worker.concurrency !== pool.concurrency) worker.concurrency = pool.concurrency;
        continue;
      }
      this.workers.delete(name);
      this.retiring.add(worker);
      void worker
        .close()
        .catch((err) => this.logger.warn({ err, pool: name }, 'closing the worker of a removed pool failed'))
        .finally(() => this.retiring.delete(worker));
    }
    for (const name of [...this.blocked.keys()]) if (!this.config.pools[name]) this.unblock(name);
    await this.start();
  }

  private take(pool: string, job: Job<RunJobData>, token: string | undefined): Promise<void> {
    const handBack = async () => {
      await job.moveToWait(token);
    };
    let untrack = () => {};
    const work = this.takeAndRun(pool, job.data, job.id, job.timestamp + (job.delay ?? 0), handBack, () => untrack());
    untrack = this.track(work);
    return work;
  }

  private async takeAndRun(
    pool: string,
    data: RunJobData,
    jobId: string | undefined,
    dueAt: number,
    handBack: () => Promise<unknown>,
    untrack: () => void,
  ): Promise<void> {
    const { runId } = data;
    // Looked up at each fetch: a run is admitted with the task's limits of now. A job of an
    // older version names no task: its record does.
    const name = data.task ?? (await this.taskOfRun(runId));
    const task = name === undefined ? undefined : this.config.tasks[name];
    if (name === undefined) return; // no record: nothing to run (Redis lost it; orphans.ts records what ran)
    if (this.stopping || !task) {
      // Fetched as the daemon stops: hand it back rather than hold it, or another node would
      // wait for stalled-job detection to take it. The same for a task a reload just removed
      // (or a newer file elsewhere added): a daemon whose config has it takes the job, and
      // this pool waits a moment before fetching again rather than take it back at once.
      if (!task) this.holdBack(pool);
      await handBack();
      throw new WaitingError();
    }
    if (!this.admission.reserve(runId, task)) {
      // Too big for the room left here (or another worker of this node took the last room
      // between our fetch and now). The job goes back to the front of its queue for whichever
      // node has room; this pool fetches again once a run here ends.
      const refused = this.admission.whyNot(task) ?? 'no room on this node';
      this.observers.waits?.runRefused(runId, task.name, refused);
      this.observers.events?.emit('admission:refused', { task: task.name, pool: task.pool, reason: refused });
      this.holdBack(pool);
      await handBack();
      throw new WaitingError();
    }
    this.observers.reserved?.(task);
    // Counted once the run is taken, for the task whose run it was: while the pool's worker
    // was paused nobody here knew which runs waited behind it.
    const block = this.lastBlock.get(pool);
    if (block && dueAt < block.until) {
      this.lastBlock.delete(pool);
      this.observers.events?.emit('admission:refused', { task: task.name, pool: task.pool, reason: block.reason });
    }
    this.refresh();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.admission.release(runId);
      this.roomFreed();
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
      this.holdBack(pool);
      await handBack();
      throw new WaitingError();
    } finally {
      release();
    }
  }

  private async taskOfRun(runId: string): Promise<string | undefined> {
    return (await this.redis.hget(keys.run(runId), 'task')) ?? undefined;
  }

  /** Pauses `pool`'s worker until a run here ends, or for a short while: the run it handed back may fit then. */
  private holdBack(pool: string): void {
    const worker = this.workers.get(pool);
    if (!worker || this.handedBack.has(pool)) return;
    const timer = setTimeout(() => {
      this.handedBack.delete(pool);
      this.refresh();
    }, HAND_BACK_PAUSE_MS);
    timer.unref();
    this.handedBack.set(pool, timer);
    if (!worker.isPaused()) void worker.pause(true).catch(() => undefined);
  }

  /** A run here ended: room came back, so every pool may fetch again. */
  private roomFreed(): void {
    for (const timer of this.handedBack.values()) clearTimeout(timer);
    this.handedBack.clear();
    this.refresh();
  }

  private block(pool: string, reason: string): void {
    if (this.blocked.get(pool) === reason) return;
    this.blocked.set(pool, reason);
    this.observers.waits?.poolBlocked(pool, reason);
  }

  private unblock(pool: string): void {
    const reason = this.blocked.get(pool);
    if (reason === undefined) return;
    this.blocked.delete(pool);
    this.lastBlock.set(pool, { reason, until: Date.now() });
    this.observers.waits?.poolBlocked(pool, undefined);
  }

  /**
   * A run this node already runs without having taken its job (adopted at start-up by
   * dispatch/settle.ts) holds its room as a taken job does, until `ended`: else new runs
   * would start beside it past the pool's and the node's budgets. Its job, if delivered
   * here again meanwhile, finds the room held under the same run id and joins the run.
   */
  holdUntil(runId: string, task: TaskConfig, ended: Promise<unknown>): void {
    this.admission.hold(runId, task);
    this.observers.reserved?.(task);
    this.refresh();
    const free = () => {
      this.admission.release(runId);
      this.roomFreed();
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

  /**
   * Pauses the workers of pools where not even the smallest of their runs would fit now, or
   * that handed a run back and wait for room; resumes the rest.
   */
  refresh(): void {
    if (this.stopping) return;
    for (const [name, worker] of this.workers) {
      if (worker.closing) continue;
      const smallest = this.smallest.get(name);
      // Said for people (ops/waiting.ts) only when the pool is full here, not for a hand-back:
      // a run handed back carries its own reason.
      const why = smallest === undefined ? undefined : this.admission.whyNot(smallest);
      if (why === undefined) this.unblock(name);
      else this.block(name, why);
      const fits = !this.handedBack.has(name) && why === undefined;
      if (fits && worker.isPaused()) worker.resume();
      else if (!fits && !worker.isPaused()) void worker.pause(true).catch(() => undefined);
    }
  }

  /** Stops taking new jobs; with `force`, does not wait for the ones in progress. */
  async close(force = false): Promise<void> {
    for (const timer of this.handedBack.values()) clearTimeout(timer);
    this.handedBack.clear();
    await Promise.allSettled([...this.workers.values(), ...this.retiring].map((w) => w.close(force)));
    this.workers.clear();
  }
}
