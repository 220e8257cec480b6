import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { registerScripts, ScriptCode } from '../redis/scripts.js';
import { keys } from '../runs/keys.js';

/** How often each daemon compares what it knows of pauses with Redis (one SMEMBERS and one HGETALL). */
export const PAUSE_SYNC_MS = 2_000;

/** A task's latest pause or resume: which, and when (epoch ms, Redis's clock). */
interface Change {
  readonly paused: boolean;
  readonly at: number;
}

/**
 * Which tasks are paused, cluster-wide: a Redis set every daemon reads at each tick, so a
 * pause from any node (API, CLI) holds on all of them at once, and survives restarts.
 *
 * Redis may lose it: emptied (a flush, a restart without its append-only file) or failed
 * over before the change reached the replica. A pause that silently lifts is a task someone
 * stopped on purpose running again, so every daemon keeps each task's latest change it made
 * or read (every `PAUSE_SYNC_MS`, and at every tick it checks), with the change's time, and
 * puts back what Redis lacks. Which change is the latest is decided by time, in Redis
 * (setPause-2.lua): a resume made on one daemon just before the emptying is newer than the
 * pause another daemon still remembers, so it stands once its daemon has put it back.
 * What no live daemon saw is lost: a change made within the last sync period on a daemon
 * that died since (then a resumed task may come back paused, or a pause lift).
 */
export class PauseState {
  private readonly known = new Map<string, Change>();
  private timer?: NodeJS.Timeout;
  private syncing?: Promise<Set<string>>;

  constructor(
    private readonly redis: Redis,
    private readonly logger?: Logger,
  ) {
    registerScripts(redis);
  }

  async pause(task: string): Promise<void> {
    await this.change(task, true);
  }

  async resume(task: string): Promise<void> {
    await this.change(task, false);
  }

  private async change(task: string, paused: boolean): Promise<void> {
    const [, at] = await this.redis.runletSetPause(keys.paused(), keys.pausedAt(), task, paused ? '1' : '0', '');
    this.note(task, { paused, at: Number(at) });
  }

  /** Read at each tick; a change Redis lost is put back first, so the answer is never the emptied Redis's. */
  async isPaused(task: string): Promise<boolean> {
    const res = await this.redis.multi().sismember(keys.paused(), task).hget(keys.pausedAt(), task).exec();
    const member = res?.[0]?.[1] === 1;
    const stored = res?.[1]?.[1] == null ? undefined : Number(res[1][1]);
    const mine = this.known.get(task);
    if (mine && (stored === undefined || mine.at > stored)) return this.putBack(task, mine);
    if (stored !== undefined) this.note(task, { paused: member, at: stored });
    return member;
  }

  /** The paused tasks, after putting back any change Redis lost. */
  all(): Promise<Set<string>> {
    this.syncing ??= this.sync().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  /**
   * Learns every change Redis holds and puts back each one it lacks or holds older: after
   * an emptying this runs on every daemon, each adding what it knew.
   */
  private async sync(): Promise<Set<string>> {
    const res = await this.redis.multi().smembers(keys.paused()).hgetall(keys.pausedAt()).exec();
    const members = new Set((res?.[0]?.[1] as string[] | undefined) ?? []);
    const times = (res?.[1]?.[1] as Record<string, string> | undefined) ?? {};
    for (const [task, at] of Object.entries(times)) this.note(task, { paused: members.has(task), at: Number(at) });
    for (const [task, mine] of this.known) {
      const stored = times[task] === undefined ? undefined : Number(times[task]);
      if (stored !== undefined && stored >= mine.at) continue;
      if (await this.putBack(task, mine)) members.add(task);
      else members.delete(task);
    }
    return members;
  }

  /**
   * Writes `mine` back with its own time: it lands unless Redis meanwhile holds a newer
   * change (another daemon's, or a person's), which then stands. Returns whether the task is
   * paused now.
   */
  private async putBack(task: string, mine: Change): Promise<boolean> {
    const [code, at, paused] = await this.redis.runletSetPause(keys.paused(), keys.pausedAt(), task, mine.paused ? '1' : '0', mine.at);
    if (code === ScriptCode.Applied) {
      this.logger?.warn(
        { task, paused: mine.paused, changedAt: new Date(mine.at).toISOString() },
        mine.paused
          ? 'redis had lost that this task is paused (emptied, or failed over before the pause reached the replica): paused it again'
          : 'redis had lost that this task was resumed: resumed it again',
      );
      return mine.paused;
    }
    this.note(task, { paused: paused === 1, at: Number(at) });
    return paused === 1;
  }

  private note(task: string, change: Change): void {
    const mine = this.known.get(task);
    if (!mine || change.at >= mine.at) this.known.set(task, change);
  }

  /** Syncs every `everyMs` until stopped. */
  start(everyMs = PAUSE_SYNC_MS): () => Promise<void> {
    this.timer = setInterval(
      () => void this.all().catch((err) => this.logger?.warn({ err }, 'could not compare paused tasks with redis')),
      everyMs,
    );
    this.timer.unref();
    return async () => {
      clearInterval(this.timer);
      await this.syncing?.catch(() => undefined);
    };
  }
}
