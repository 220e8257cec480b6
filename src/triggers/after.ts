import type { TaskConfig } from '../config/types.js';
import type { EndedEntry } from '../runs/ended.js';
import { EndedConsumer, type Handled } from '../runs/ended-consumer.js';
import { outputValue, type RunRecord, type RunRequest } from '../runs/types.js';
import type { Trigger, TriggerDeps } from './types.js';

/** The consumer group of the ended-runs stream that chaining reads with. */
export const AFTER_GROUP = 'after';
/** An entry a consumer took but did not acknowledge for this long is taken over (its daemon died). */
const CLAIM_IDLE_MS = 30_000;

/** The tasks to start when a run of `task` ends in `status`. */
export function followersOf(tasks: readonly TaskConfig[], task: string, status: string): TaskConfig[] {
  return tasks.filter((t) => t.after?.some((a) => a.task === task && a.status.includes(status)));
}

/** The chained run's request: one per finished run and follower, whoever submits it. */
export function afterRequest(follower: string, ended: RunRecord): RunRequest {
  return {
    task: follower,
    trigger: 'after',
    // The finished run's id: however often its end is read (a redelivered stream entry, two
    // daemons), the follower runs once for it.
    dedupeKey: `${follower}:after:${ended.id}`,
    payload: {
      runId: ended.id,
      task: ended.task,
      status: ended.status,
      ...(ended.exitCode !== undefined && { exitCode: ended.exitCode }),
      ...(ended.reason !== undefined && { reason: ended.reason }),
      ...(ended.output !== undefined && { output: outputValue(ended.output) }),
    },
    cause: `run ${ended.id} of ${ended.task} ended ${ended.status}`,
  };
}

/**
 * Chaining (`after:`). Every daemon reads the ended-runs stream in one consumer group, so
 * each entry goes to one daemon; that daemon submits the followers' runs and only then
 * acknowledges the entry.
 *
 * Exactly once: the stream entry is written by the same script that records the terminal
 * status, so no ended run is missed. A daemon that dies between reading and acknowledging
 * leaves the entry pending, and another daemon claims it after claimIdleMs (30 s) and submits
 * again; the dedupe key (the finished run's id) makes that second submit return the run
 * the first one made. So each follower run is submitted at least once and created once.
 */
export class AfterTrigger implements Trigger {
  readonly name: string;
  private readonly consumer: EndedConsumer;

  constructor(
    private readonly deps: TriggerDeps,
    private readonly followers: readonly TaskConfig[],
    claimIdleMs = CLAIM_IDLE_MS,
  ) {
    this.name = `after → ${followers.map((f) => f.name).join(', ')}`;
    this.consumer = new EndedConsumer({
      redis: deps.redis,
      group: AFTER_GROUP,
      consumer: deps.identity.daemonId,
      logger: deps.logger,
      epoch: deps.epoch,
      claimIdleMs,
      purpose: 'chaining',
      handle: (entry) => this.handle(entry),
    });
  }

  start(): Promise<void> {
    return this.consumer.start();
  }

  private async handle(entry: EndedEntry): Promise<Handled> {
    const followers = followersOf(this.followers, entry.task, entry.status);
    if (followers.length > 0) {
      const ended = await this.deps.store.get(entry.run, { withLogs: true });
      if (ended) {
        for (const f of followers) {
          const res = await this.deps.submit(afterRequest(f.name, ended));
          if (res.created) this.deps.logger.info({ runId: res.runId, task: f.name, after: ended.id }, 'chained run queued');
        }
      } else {
        this.deps.logger.warn(
          { runId: entry.run, task: entry.task },
          'a finished run was deleted before its followers could start; they are not run',
        );
      }
    }
    // Acknowledged only after every follower's run is recorded: see the class comment.
    return 'ack';
  }

  stop(): Promise<void> {
    return this.consumer.stop();
  }
}

/** One chaining reader per daemon, when any task has `after:`. */
export function afterTriggers(deps: TriggerDeps): Trigger[] {
  const followers = Object.values(deps.config.tasks).filter((t) => t.after && t.after.length > 0);
  return followers.length > 0 ? [new AfterTrigger(deps, followers)] : [];
}
