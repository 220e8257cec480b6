import type { Logger } from 'pino';
import type { RunletConfig, TaskConfig } from '../config/types.js';
import type { RunletEvents } from '../runs/events.js';
import type { DockerRuntime } from '../runtime/docker.js';
import type { LambdaRuntimeApi } from '../runtime/lambda-api.js';
import { ReusableInstance, ReusablePool } from '../runtime/reusable.js';
import type { Identity } from './identity.js';
import { WARM_TICK_MS, warmSpecFor } from './warm-pool.js';

interface TaskPool {
  readonly pool: ReusablePool;
  /** The task's settings the instances were made with: a reload that changes them gets a new pool. */
  readonly made: string;
  busy: number;
  lastUse: number;
}

/** Reusable instances per task on this node, as the heartbeat reports them (the nodes view). */
export type ReuseCounts = Record<string, { instances: number; idle: number; busy: number }>;

/** An instance leased for one invocation; release() gives it back to its pool (or lets a spent one be replaced). */
export interface Lease {
  readonly instance: ReusableInstance;
  release(): void;
}

/**
 * This node's reusable instances (`reuse: true`), one ReusablePool per task, all behind one
 * LambdaRuntimeApi. A pool is made at the first run of its task here (or at start for
 * `warm` > 0, filled), sized to the task's `concurrency`; it grows only when an admitted
 * run waits for an instance, so it never has more instances than runs admitted here at
 * once. A pool with no invocation for the task's `warmIdleMs` is closed (scale to zero)
 * unless the task has `warm` > 0.
 */
export class ReusePools {
  private readonly pools = new Map<string, TaskPool>();
  /** Idle ms already reported per instance, so each report adds only what is new. */
  private readonly reported = new WeakMap<ReusableInstance, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      readonly config: RunletConfig;
      readonly runtime: DockerRuntime;
      readonly api: LambdaRuntimeApi;
      readonly identity: Identity;
      readonly events: RunletEvents;
      readonly logger: Logger;
    },
  ) {}

  start(): void {
    for (const task of Object.values(this.deps.config.tasks))
      if (task.reuse && task.warm > 0)
        void this.poolOf(task)
          .pool.fill()
          .catch((err) => this.deps.logger.warn({ err, task: task.name }, 'could not start the reusable instances'));
    this.timer = setInterval(() => this.expire(), WARM_TICK_MS);
    this.timer.unref();
  }

  /** An instance of `task` for one invocation: an idle one, a new one (up to the pool's size), or the next to come free. */
  async lease(task: TaskConfig): Promise<Lease> {
    const entry = this.poolOf(task);
    entry.busy++;
    entry.lastUse = Date.now();
    let instance: ReusableInstance;
    try {
      ({ instance } = await entry.pool.lease());
    } catch (err) {
      entry.busy--;
      throw err;
    }
    let released = false;
    return {
      instance,
      release: () => {
        if (released) return;
        released = true;
        entry.busy--;
        entry.lastUse = Date.now();
        this.report(instance);
        entry.pool.release(instance);
      },
    };
  }

  /** Instances alive per task, idle and busy (the heartbeat, for the nodes view); a task with none is left out. */
  counts(): ReuseCounts {
    const out: ReuseCounts = {};
    for (const [name, entry] of this.pools) {
      const c = entry.pool.counts();
      if (c.instances > 0) out[name] = c;
    }
    return out;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.pools.keys()].map((name) => this.closePool(name, 'the daemon stops')));
    await this.deps.api.close();
  }

  private poolOf(task: TaskConfig): TaskPool {
    const made = fingerprint(task);
    const had = this.pools.get(task.name);
    if (had && had.made === made) return had;
    if (had) void this.closePool(task.name, 'its task changed');
    // The task's env and secrets on the container: one process serves every invocation and reads them once, at start.
    const spec = {
      ...warmSpecFor(task, this.deps.identity),
      env: { ...task.env, ...task.secrets, RUNLET_TASK: task.name },
      lifetimeMs: 60 * 60_000,
    };
    const pool = new ReusablePool(() => ReusableInstance.start(this.deps.runtime, this.deps.api, spec), Math.max(1, task.concurrency));
    const entry: TaskPool = { pool, made, busy: 0, lastUse: Date.now() };
    this.pools.set(task.name, entry);
    return entry;
  }

  private expire(): void {
    const now = Date.now();
    for (const [name, entry] of this.pools) {
      const task = this.deps.config.tasks[name];
      if (!task || !task.reuse || fingerprint(task) !== entry.made) {
        if (entry.busy === 0) void this.closePool(name, 'its task was removed or changed');
        continue;
      }
      if (task.warm === 0 && entry.busy === 0 && now - entry.lastUse >= task.warmIdleMs)
        void this.closePool(name, 'no invocation within its idle period');
    }
  }

  private async closePool(name: string, why: string): Promise<void> {
    const entry = this.pools.get(name);
    if (!entry) return;
    this.pools.delete(name);
    this.deps.logger.debug({ task: name, why }, 'closing reusable instances');
    for (const instance of entry.pool.members) this.report(instance);
    await entry.pool.close();
  }

  private report(instance: ReusableInstance): void {
    const idle = instance.idleMs();
    const before = this.reported.get(instance) ?? 0;
    this.reported.set(instance, idle);
    if (idle > before) this.deps.events.emit('warm:idle', { task: instance.spec.task, idleMs: idle - before });
  }
}

function fingerprint(task: TaskConfig): string {
  const { image, command, memoryBytes, cpus, pids, user, readOnly, network, concurrency } = task;
  return JSON.stringify({ image, command, memoryBytes, cpus, pids, user, readOnly, network, concurrency });
}
