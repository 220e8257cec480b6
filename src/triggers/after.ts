import { createHash } from 'node:crypto';
import type { TaskConfig } from '../config/types.js';
import type { EndedEntry } from '../runs/ended.js';
import { EndedConsumer, type Handled } from '../runs/ended-consumer.js';
import { outputValue, type RunRecord, type RunRequest } from '../runs/types.js';
import type { Trigger, TriggerDeps } from './types.js';

/**
 * The consumer group of the ended-runs stream that chaining reads with: one per set of
 * follower definitions (`after:<hash>`), so that the daemons of one group all do the same
 * work with an entry. See the comment where an entry is acknowledged (AfterTrigger.handle).
 */
export function afterGroup(followers: readonly TaskConfig[]): string {
  const spec = followers.map((f) => [f.name, f.after ?? []]).sort(([a], [b]) => String(a).localeCompare(String(b)));
  return `after:${createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 12)}`;
}
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
 * Chaining (`after:`). Every daemon with the same follower definitions reads the ended-runs
 * stream in one consumer group, so each entry goes to one of them; that daemon submits the
 * followers' runs and only then acknowledges the entry.
 *
 * Exactly once: the stream entry is written by the same script that records the terminal
 * status, so no ended run is missed. A daemon that dies between reading and acknowledging
 * leaves the entry pending, and another daemon claims it after claimIdleMs (30 s) and submits
 * again; the dedupe key (the finished run's id) makes that second submit return the run
 * the first one made. So each follower run is submitted at least once and created once.
 */
export class AfterTrigger implements Trigger {
  readonly name: string;
  readonly group: string;
  private readonly consumer: EndedConsumer;

  constructor(
    private readonly deps: TriggerDeps,
    private readonly followers: readonly TaskConfig[],
    claimIdleMs = CLAIM_IDLE_MS,
  ) {
    this.name = `after → ${followers.map((f) => f.name).join(', ')}`;
    this.group = afterGroup(followers);
    this.consumer = new EndedConsumer({
      redis: deps.redis,
      group: this.group,
      consumer: deps.identity.daemonId,
      logger: deps.logger,
      epoch: deps.epoch,
      claimIdleMs,
      purpose: 'chaining',
      handle: (entry) => this.handle(entry),
    });
  }

  /** A new group reads from `from` (default: from the newest entry when this daemon started, see TriggerDeps). */
  start(from = this.deps.endedFrom ?? '$'): Promise<void> {
    return this.consumer.start(from);
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
    //
    // And only by a daemon that knows every follower this entry has in the configs that read
    // this group. During a rolling config change, daemons on one Redis run different files;
    // had they shared one group, an entry given to a daemon without a newly added follower
    // would be acknowledged with that follower never started. So the group is named for the
    // follower definitions (afterGroup): daemons whose definitions are equal share a group
    // (each entry to one of them, taken over from a dead one), and a daemon whose
    // definitions differ reads every entry in a group of its own. A follower both configs
    // have is then submitted by both, and its dedupe key (the finished run's id) makes that
    // one run. At least once per config version, once in effect.
    return 'ack';
  }

  stop(): Promise<void> {
    return this.consumer.stop();
  }

  /** Stops and says where a group replacing this one starts (EndedConsumer.handOverPoint). */
  async handOver(): Promise<string> {
    await this.stop();
    return this.consumer.handOverPoint();
  }
}

/** The tasks of `tasks` that follow others (`after:`). */
export function followersIn(tasks: Readonly<Record<string, TaskConfig>>): TaskConfig[] {
  return Object.values(tasks).filter((t) => t.after && t.after.length > 0);
}
