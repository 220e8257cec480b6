import type { RunletConfig, TaskConfig } from '../config/types.js';
import { AfterTrigger, afterGroup, followersIn } from './after.js';
import { CronTrigger, cronTriggers } from './cron.js';
import { mongoTriggersOf } from './mongo/index.js';
import { queueTriggersOf } from './queue.js';
import type { Trigger, TriggerDeps } from './types.js';

/**
 * What a task's own triggers (schedule, queue, change stream) take from its config when they
 * are made. A reload makes them again when this differs, and leaves them running otherwise:
 * everything else of the task is read when a run is submitted or claimed.
 */
function madeFrom(task: TaskConfig): string {
  return JSON.stringify([task.schedule, task.timezone, task.queue, task.mongo, task.maxPayloadBytes]);
}

/**
 * The long-lived triggers of a daemon (webhooks are routes of the HTTP server): each task's
 * own, and chaining, one reader for all followers. Kept per task so that a reload stops and
 * starts only what its changes touch. One that fails to start is logged, never fatal to the
 * others (a change stream whose server is down must not stop the schedules).
 *
 * `deps.config` is read when triggers are made: the daemon passes the live view.
 */
export class RunningTriggers {
  private readonly own = new Map<string, { readonly madeFrom: string; readonly triggers: readonly Trigger[] }>();
  private after?: AfterTrigger;
  /** Where the chaining group a reload replaced stopped: the next one reads from there. */
  private afterFrom?: string;

  constructor(private readonly deps: TriggerDeps) {}

  /** At start: every task's triggers, schedules first, each catching up on ticks no daemon fired. */
  async start(): Promise<void> {
    const crons = new Map((await cronTriggers(this.deps)).map((c) => [c.taskName, c]));
    for (const task of Object.values(this.deps.config.tasks)) {
      const cron = crons.get(task.name);
      this.own.set(task.name, { madeFrom: madeFrom(task), triggers: [...(cron ? [cron] : []), ...this.eventTriggersOf(task)] });
    }
    const followers = followersIn(this.deps.config.tasks);
    this.after = followers.length > 0 ? new AfterTrigger(this.deps, followers) : undefined;
    await this.startAll(this.all());
  }

  /**
   * A reload, before `next` takes effect: stops the triggers of tasks it removes or whose
   * triggers it changes, and chaining if its followers differ, so nothing fires for a task
   * the config no longer has.
   */
  async stopOutdated(next: RunletConfig): Promise<void> {
    const stopping: Trigger[] = [];
    for (const [name, entry] of this.own) {
      const task = next.tasks[name];
      if (task && madeFrom(task) === entry.madeFrom) continue;
      this.own.delete(name);
      stopping.push(...entry.triggers);
    }
    await Promise.allSettled(stopping.map((t) => t.stop()));
    const followers = followersIn(next.tasks);
    if (!this.after || (followers.length > 0 && afterGroup(followers) === this.after.group)) return;
    this.afterFrom = await this.after.handOver().catch((err) => {
      this.deps.logger.warn({ err }, 'could not read where chaining stopped; the new followers read from now');
      return undefined;
    });
    this.after = undefined;
  }

  /**
   * A reload, once the config is current: starts the triggers of tasks that have none
   * running (added, or stopped by `stopOutdated`). Their schedules resume from `since`, when
   * the old timers stopped; chaining with new followers reads from where the old stopped.
   */
  async startMissing(since: number): Promise<void> {
    const started: Trigger[] = [];
    for (const task of Object.values(this.deps.config.tasks)) {
      if (this.own.has(task.name)) continue;
      const cron = task.schedule
        ? [new CronTrigger(task, (request, opts) => this.deps.submit(request, opts), this.deps.logger, Date.now, undefined, since)]
        : [];
      const triggers = [...cron, ...this.eventTriggersOf(task)];
      this.own.set(task.name, { madeFrom: madeFrom(task), triggers });
      started.push(...triggers);
    }
    const followers = followersIn(this.deps.config.tasks);
    if (!this.after && followers.length > 0) {
      const after = new AfterTrigger(this.deps, followers);
      // From where the replaced group stopped; followers with no group before: from now.
      // Should it fail, the next reload tries again from the same place.
      await after.start(this.afterFrom ?? '$').then(
        () => {
          this.after = after;
          this.afterFrom = undefined;
        },
        (err) => this.deps.logger.error({ err, trigger: after.name }, 'trigger failed to start; reload again to retry'),
      );
    }
    await this.startAll(started);
  }

  /** Names of the running triggers, for the log. */
  names(): string[] {
    return this.all().map((t) => t.name);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.all().map((t) => t.stop()));
  }

  private eventTriggersOf(task: TaskConfig): Trigger[] {
    return [...queueTriggersOf(this.deps, task), ...mongoTriggersOf(this.deps, task)];
  }

  private all(): Trigger[] {
    return [...[...this.own.values()].flatMap((e) => e.triggers), ...(this.after ? [this.after] : [])];
  }

  private async startAll(triggers: readonly Trigger[]): Promise<void> {
    for (const t of triggers) await t.start().catch((err) => this.deps.logger.error({ err, trigger: t.name }, 'trigger failed to start'));
  }
}
