import type { Cron } from 'croner';
import type { Logger } from 'pino';
import type { TaskConfig } from '../config/types.js';
import { formatDuration } from '../lib/format.js';
import { keys } from '../runs/keys.js';
import type { RunRequest } from '../runs/types.js';
import type { Trigger, TriggerDeps } from './types.js';
import { cronOf } from '../config/fire-times.js';
import { ticksBetween } from '../config/ticks.js';

export type Submit = (
  request: RunRequest,
  opts: { cronMarker: boolean; skipReason?: string },
) => Promise<{ runId: string; created: boolean }>;

/**
 * One CronTrigger per scheduled task. The tick each task last claimed (any daemon) is read
 * in one round trip for all of them: catch-up starts from it.
 */
export async function cronTriggers(deps: TriggerDeps): Promise<CronTrigger[]> {
  const scheduled = Object.values(deps.config.tasks).filter((t) => t.schedule);
  if (scheduled.length === 0) return [];
  const last = await deps.redis.mget(scheduled.map((t) => keys.cronLast(t.name)));
  return scheduled.map(
    (t, i) =>
      new CronTrigger(t, (request, opts) => deps.submit(request, opts), deps.logger, Date.now, last[i] ? Number(last[i]) : undefined),
  );
}

/** Missed ticks counted at start-up, at most; the record says "more than" beyond it. */
const MISSED_COUNT_LIMIT = 10_000;

/** setTimeout's limit; longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * A tick at most this old when a daemon starts is fired by its timer, late, rather than
 * taken for one missed. A running daemon claims each tick a moment after it (its timer, a
 * Redis round trip, an event loop busy on a loaded host): a daemon starting in that moment
 * would otherwise find the tick unclaimed and record it `skipped` ("missed while no daemon
 * ran") while the other was about to run it (test/cluster.restarts.test.ts). Fired by the
 * timer, it goes through its dedupe key like any tick: one run, whichever daemon claims it.
 * With no other daemon up, such a tick runs a few seconds late, as a stalled process's do.
 */
export const STARTUP_GRACE_MS = 5_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * Fires one task's schedule on this daemon. Every daemon runs the same timers; the dedupe
 * key `<task>:cron:<tickMs>` is claimed atomically in Redis (see dispatch/enqueue.ts), so a
 * tick becomes exactly one run however many daemons fire it. The tick time comes from the
 * schedule, never from the clock at firing, so all daemons compute the same key.
 */
export class CronTrigger implements Trigger {
  private readonly cron: Cron;
  private timer?: NodeJS.Timeout;
  /** The last tick handled; the next one is computed from it, not from now. */
  private cursor: number;
  private stopped = true;
  private retryMs = RETRY_MIN_MS;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly task: TaskConfig,
    private readonly submit: Submit,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    /** The last tick any daemon claimed (keys.cronLast), for catch-up; none on a first start. */
    private readonly lastClaimedTick?: number,
    /**
     * Made by a reload: fire the ticks after this time (when the timer it replaces stopped),
     * without catch-up. The daemon was running all along, so nothing was missed "while no
     * daemon ran"; a tick of the new schedule between the two timers fires at once.
     */
    private readonly resumeFrom?: number,
  ) {
    this.cron = cronOf(task.schedule as string, task.timezone);
    this.cursor = now();
  }

  /**
   * Starts firing ticks. First, catch-up: if ticks were missed since the last one any daemon
   * claimed (no daemon ran), the latest of them becomes one run when it is inside the task's
   * `catchup` window, or one `skipped` record saying why not. It goes through the tick's own
   * dedupe key, so daemons starting together still make one record, and a start-up never
   * makes more than one catch-up run per task. Ticks of the last STARTUP_GRACE_MS are not
   * missed ones: the timer starts from there and fires them as live ticks. With no tick ever
   * claimed (a new task or cluster) nothing was missed, and the timer starts from now.
   */
  async start(): Promise<void> {
    this.stopped = false;
    const now = this.now();
    this.cursor = this.resumeFrom ?? now;
    if (this.lastClaimedTick !== undefined && this.resumeFrom === undefined) {
      const missedUntil = now - STARTUP_GRACE_MS;
      await this.catchUp(this.lastClaimedTick, missedUntil, now);
      // Ticks up to the last claimed one are claimed for sure: no need to propose them again.
      this.cursor = Math.max(this.lastClaimedTick, missedUntil);
    }
    this.arm();
  }

  /** Ticks in (lastClaimedTick, missedUntil] were missed: at most one record for them. */
  private async catchUp(lastClaimedTick: number, missedUntil: number, now: number): Promise<void> {
    const { ticks, more } = ticksBetween(this.task, lastClaimedTick, missedUntil, MISSED_COUNT_LIMIT);
    if (ticks.length === 0) return;
    const latest = ticks[ticks.length - 1];
    const missed = more ? `more than ${MISSED_COUNT_LIMIT}` : String(ticks.length);
    const request: RunRequest = {
      task: this.task.name,
      trigger: 'cron',
      dedupeKey: `${this.task.name}:cron:${latest}`,
      scheduledAt: latest,
      missedTicks: ticks.length,
    };
    const age = now - latest;
    const inside = age <= this.task.catchupMs;
    const skipReason = inside
      ? undefined
      : `catch-up window passed: ${missed} tick(s) missed while no daemon ran, the latest at ${new Date(latest).toISOString()} ` +
        `(${formatDuration(age)} ago); catchup is ${this.task.catchupMs === 0 ? 'off (0s)' : formatDuration(this.task.catchupMs)}`;
    try {
      const { runId, created } = await this.submit(request, { cronMarker: true, skipReason });
      this.logger.info(
        { task: this.task.name, missed, latest: new Date(latest).toISOString(), runId, created },
        inside ? 'catching up missed ticks with one run' : 'missed ticks are outside the catch-up window',
      );
    } catch (err) {
      this.logger.error({ err, task: this.task.name }, 'could not record missed ticks');
    }
  }

  get taskName(): string {
    return this.task.name;
  }

  get name(): string {
    return `cron "${this.task.schedule}" → ${this.task.name}`;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.inFlight;
  }

  nextTick(): number | undefined {
    return this.cron.nextRun(new Date(this.cursor))?.getTime();
  }

  private arm(delayOverride?: number): void {
    if (this.stopped) return;
    const tick = this.nextTick();
    if (tick === undefined) return; // a schedule with no future times (e.g. a past year)
    const delay = delayOverride ?? Math.max(0, tick - this.now());
    this.timer = setTimeout(
      () => {
        this.inFlight = this.fire(tick);
      },
      Math.min(delay, MAX_TIMER_MS),
    );
  }

  private async fire(tick: number): Promise<void> {
    if (this.stopped) return;
    if (this.now() < tick) return this.arm(); // a long wait taken in steps, or an early timer
    try {
      const { runId, created } = await this.submit(
        { task: this.task.name, trigger: 'cron', dedupeKey: `${this.task.name}:cron:${tick}`, scheduledAt: tick },
        { cronMarker: true },
      );
      this.logger.debug(
        { task: this.task.name, tick: new Date(tick).toISOString(), runId, created },
        created ? 'cron tick queued' : 'cron tick already claimed by another daemon',
      );
      // Advance only after the tick is durably claimed: if the submit threw, the same tick
      // is tried again below (safe: its dedupe key makes a retry a no-op if it did land).
      this.cursor = tick;
      this.retryMs = RETRY_MIN_MS;
    } catch (err) {
      this.logger.error(
        { err, task: this.task.name, tick: new Date(tick).toISOString() },
        `could not queue a cron tick; retrying in ${this.retryMs} ms`,
      );
      const wait = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      return this.arm(wait);
    }
    // Re-arm last, one tick at a time: ticks missed while the process was stalled are
    // then queued in order, each once, and an error above can never skip a tick.
    this.arm();
  }
}
