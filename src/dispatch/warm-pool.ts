import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RunletConfig, TaskConfig } from '../config/types.js';
import type { RunletEvents } from '../runs/events.js';
import { LABEL_DAEMON, nodeLabels } from '../runtime/labels.js';
import type { DeliveredRun, RunSpec, WarmInstance, WarmRuntime, WarmSpec } from '../runtime/types.js';
import { warmReservation, type NodeAdmission } from './admission.js';
import type { Identity } from './identity.js';

/** How often the pool looks for instances to make (a failed make, room freed) and idle periods that ran out. */
export const WARM_TICK_MS = 2_000;
/** After a task's instance could not be made (image gone, engine refused), no new try for this long. */
const MAKE_BACKOFF_MS = 30_000;

interface Idle {
  readonly instance: WarmInstance;
  /** The admission reservation it holds (warmReservation(key)). */
  readonly key: string;
}

export interface WarmPoolDeps {
  /** Read at each use (the daemon's live view): a reload changes targets at the next tick. */
  readonly config: RunletConfig;
  readonly runtime: WarmRuntime;
  readonly admission: NodeAdmission;
  readonly identity: Identity;
  readonly events: RunletEvents;
  readonly logger: Logger;
  /** A warm instance's room went back to the node (taken or retired): paused pools may fetch again. */
  readonly roomFreed?: () => void;
}

/**
 * This node's idle warm instances (runtime.warm): per task, `warm: N` of them, made at start
 * and again in the background after each is used or retired. A run takes one (take()), so
 * exactly one run uses an instance; the run's own admission reservation replaces the
 * instance's. After a run of a task with `warmIdleMs` (functions: 5 min by default), one
 * instance is kept warm for that long even at `warm: 0` (scale to zero: no traffic for that
 * long, no container).
 *
 * Each instance holds a warm reservation in the node's admission (memory, no run slot) and
 * is only made when it and one run of its task fit the pool's and the node's budgets: fewer
 * instances rather than a node past its budget, and never the last room a run needs. Runs
 * come first: a run is admitted without counting idle instances, which are then shed.
 */
export class WarmPool {
  private readonly idle = new Map<string, Idle[]>();
  private readonly making = new Map<string, number>();
  /** Epoch ms of each task's latest run here: one instance stays warm for warmIdleMs after it. */
  private readonly lastUse = new Map<string, number>();
  private readonly backoffUntil = new Map<string, number>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** The config's tasks object `warmTasks` was read from: a reload puts a new one in place. */
  private indexed: RunletConfig['tasks'] | undefined;
  /** The tasks with `warm: N > 0`, so a tick costs nothing per task that never has instances. */
  private warmTasks: TaskConfig[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: WarmPoolDeps) {}

  start(): void {
    this.topUp();
    this.timer = setInterval(() => {
      this.shed();
      this.expire();
      this.topUp();
    }, WARM_TICK_MS);
    this.timer.unref();
  }

  /** How many idle instances `task` should have here now. Reusable tasks are served by ReusePools instead. */
  target(task: TaskConfig, now = Date.now()): number {
    if (task.reuse) return 0;
    const recent = task.warmIdleMs > 0 && now - (this.lastUse.get(task.name) ?? -Infinity) < task.warmIdleMs;
    return Math.max(task.warm, recent ? 1 : 0);
  }

  /**
   * A ready instance of `task` made with its current image, command and limits, or undefined:
   * the caller then runs cold. The instance is the caller's from here (deliver it or retire
   * it); its reservation is released, the caller's run holds its own. A replacement is made in
   * the background.
   */
  take(task: TaskConfig): WarmInstance | undefined {
    this.lastUse.set(task.name, Date.now());
    const list = this.idle.get(task.name) ?? [];
    let found: WarmInstance | undefined;
    while (!found && list.length > 0) {
      const entry = list.shift()!;
      this.deps.admission.release(entry.key);
      if (fits(entry.instance.spec, task)) found = entry.instance;
      else this.retire(entry.instance, 'its task changed since it was made');
    }
    this.deps.roomFreed?.();
    // After the caller's run has reserved its room: the next tick, or now if there is room.
    queueMicrotask(() => this.topUp());
    return found;
  }

  /** Notes a run of `task` here (taken warm or not), for scale to zero. */
  used(task: TaskConfig): void {
    this.lastUse.set(task.name, Date.now());
    if (this.target(task) > 0) queueMicrotask(() => this.topUp());
  }

  /** Delivers `spec` to `instance` (runtime.deliver), reporting its idle time apart in usage. */
  async deliver(instance: WarmInstance, spec: RunSpec): Promise<DeliveredRun> {
    const delivered = await this.deps.runtime.deliver(instance, spec);
    this.deps.events.emit('warm:idle', { task: instance.spec.task, idleMs: delivered.idleMs });
    return delivered;
  }

  /** Removes an instance the caller took but will not deliver (or that no longer fits). */
  retire(instance: WarmInstance, why: string): void {
    this.deps.logger.debug({ task: instance.spec.task, instanceId: instance.instanceId, why }, 'retiring a warm instance');
    this.track(
      this.deps.runtime.retire(instance).then(
        ({ idleMs }) => this.deps.events.emit('warm:idle', { task: instance.spec.task, idleMs }),
        (err) => this.deps.logger.warn({ err, instanceId: instance.instanceId }, 'could not remove a warm instance'),
      ),
    );
  }

  /** Idle instances per task now (the nodes view shows them from admission's load, which counts the same). */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [task, list] of this.idle) if (list.length > 0) out[task] = list.length;
    return out;
  }

  /** Makes instances up to each task's target, as far as the budgets allow, in the background. */
  topUp(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const task of this.wanting(now)) {
      if ((this.backoffUntil.get(task.name) ?? 0) > now) continue;
      const want = this.target(task, now);
      while ((this.idle.get(task.name)?.length ?? 0) + (this.making.get(task.name) ?? 0) < want) {
        const key = warmReservation(randomUUID());
        if (!this.deps.admission.reserveWarm(key.slice('warm:'.length), task)) break;
        this.make(task, key);
      }
    }
  }

  /**
   * The tasks that may want instances now: those with `warm: N` (indexed once per config, not
   * read every tick: a daemon with 10,000 declared tasks ticks in microseconds) and those run
   * here within their idle period (scale to zero). Every other task's target is 0.
   */
  private wanting(now: number): TaskConfig[] {
    const tasks = this.deps.config.tasks;
    if (this.indexed !== tasks) {
      this.indexed = tasks;
      this.warmTasks = Object.values(tasks).filter((t) => !t.reuse && t.warm > 0);
    }
    const out = [...this.warmTasks];
    for (const [name, at] of this.lastUse) {
      const task = tasks[name];
      if (task && !task.reuse && task.warm === 0 && now - at < task.warmIdleMs) out.push(task);
    }
    return out;
  }

  /**
   * Runs come first: once a run is reserved (or adopted) and the node or a pool is past its
   * budget counting warm instances, idle ones are retired until it is not, other tasks'
   * first (an instance of `forTask` is what its run will take).
   */
  shed(forTask?: string): void {
    while (!this.deps.admission.fitsAll()) {
      const lists = [...this.idle].filter(([, list]) => list.length > 0);
      const pick = lists.find(([name]) => name !== forTask) ?? lists[0];
      if (!pick) return;
      this.drop(pick[1], 0, 'a run needed its room');
    }
  }

  /** Retires idle instances beyond their task's target (idle period over, warm lowered, task removed or changed). */
  expire(): void {
    const now = Date.now();
    for (const [name, list] of this.idle) {
      const task = this.deps.config.tasks[name];
      for (let i = list.length - 1; i >= 0; i--)
        if (!task || !fits(list[i]!.instance.spec, task)) this.drop(list, i, 'its task was removed or changed');
      const over = task ? list.length - this.target(task, now) : 0;
      for (let i = 0; i < over; i++) this.drop(list, 0, 'no run took it within its idle period');
    }
    // Forget uses whose idle period is over: the map holds only tasks that ran here lately.
    for (const [name, at] of this.lastUse) {
      const task = this.deps.config.tasks[name];
      if (!task || now - at >= task.warmIdleMs) this.lastUse.delete(name);
    }
  }

  /** Shutdown: nothing more is made; every idle instance (and each one still being made) is removed. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const list of this.idle.values()) while (list.length > 0) this.drop(list, 0, 'the daemon stops');
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private drop(list: Idle[], at: number, why: string): void {
    const [entry] = list.splice(at, 1);
    if (!entry) return;
    this.deps.admission.release(entry.key);
    this.deps.roomFreed?.();
    this.retire(entry.instance, why);
  }

  private make(task: TaskConfig, key: string): void {
    this.making.set(task.name, (this.making.get(task.name) ?? 0) + 1);
    const made = this.deps.runtime.warm(warmSpecFor(task, this.deps.identity)).then(
      (instance) => {
        if (this.closed || !this.deps.config.tasks[task.name]) {
          this.deps.admission.release(key);
          this.retire(instance, 'made as the daemon stopped or the task went');
          return;
        }
        const list = this.idle.get(task.name) ?? [];
        list.push({ instance, key });
        this.idle.set(task.name, list);
        this.deps.logger.debug({ task: task.name, instanceId: instance.instanceId, idle: list.length }, 'warm instance ready for a run');
      },
      (err) => {
        this.deps.admission.release(key);
        this.backoffUntil.set(task.name, Date.now() + MAKE_BACKOFF_MS);
        this.deps.logger.warn({ err, task: task.name }, 'could not make a warm instance; runs of the task start cold meanwhile');
      },
    );
    this.track(made.finally(() => this.making.set(task.name, (this.making.get(task.name) ?? 1) - 1)));
  }

  private track(p: Promise<unknown>): void {
    const settled = p.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
  }
}

/**
 * What a warm instance of `task` is made from: a run's spec without the run. No env on the
 * container (the run's whole env, task settings included, comes with the delivery, so
 * secrets never sit in `docker inspect`); labels name the node, cluster and daemon, so
 * start-up settling finds this node's instances whose daemon is gone.
 */
export function warmSpecFor(task: TaskConfig, identity: Identity): WarmSpec {
  return {
    task: task.name,
    image: task.image,
    command: task.command,
    memoryBytes: task.memoryBytes,
    cpus: task.cpus,
    pids: task.pids,
    killGraceMs: task.killGraceMs,
    user: task.user,
    readOnly: task.readOnly,
    network: task.network,
    labels: { ...nodeLabels(identity.clusterId, identity.node), [LABEL_DAEMON]: identity.daemonId },
  };
}

/** An instance made for an older version of the task (a reload changed its image or limits) is not used. */
function fits(spec: WarmSpec, task: TaskConfig): boolean {
  return (
    spec.image === task.image &&
    JSON.stringify(spec.command ?? null) === JSON.stringify(task.command ?? null) &&
    spec.memoryBytes === task.memoryBytes &&
    spec.cpus === task.cpus &&
    spec.pids === task.pids &&
    spec.user === task.user &&
    spec.readOnly === task.readOnly &&
    spec.network === task.network
  );
}
