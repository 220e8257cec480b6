import type { Cron } from 'croner';
import type { Logger } from 'pino';
import type { TaskConfig } from '../config/types.js';
import type { RunRequest } from '../runs/types.js';
import { cronOf } from './schedule.js';

export type Submit = (request: RunRequest, opts: { cronMarker: boolean }) => Promise<{ runId: string; created: boolean }>;

/** setTimeout's limit; longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * Fires one task's schedule on this daemon. Every daemon runs the same timers; the dedupe
 * key `<task>:cron:<tickMs>` is claimed atomically in Redis (see dispatch/enqueue.ts), so a
 * tick becomes exactly one run however many daemons fire it. The tick time comes from the
 * schedule, never from the clock at firing, so all daemons compute the same key.
 */
export class CronTrigger {
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
  ) {
    this.cron = cronOf(task.schedule as string, task.timezone);
    this.cursor = now();
  }

  /** Starts firing ticks after `fromMs` (default now): ticks before it are catch-up's business. */
  start(fromMs = this.now()): void {
    this.stopped = false;
    this.cursor = fromMs;
    this.arm();
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
    this.timer = setTimeout(() => {
      this.inFlight = this.fire(tick);
    }, Math.min(delay, MAX_TIMER_MS));
  }

  private async fire(tick: number): Promise<void> {
    if (this.stopped) return;
    if (this.now() < tick) return this.arm(); // a long wait taken in steps, or an early timer
    try {
      const { runId, created } = await this.submit(
        { task: this.task.name, trigger: 'cron', dedupeKey: `${this.task.name}:cron:${tick}`, scheduledAt: tick },
        { cronMarker: true },
      );
      this.logger.debug({ task: this.task.name, tick: new Date(tick).toISOString(), runId, created }, created ? 'cron tick queued' : 'cron tick already claimed by another daemon');
      // Advance only after the tick is durably claimed: if the submit threw, the same tick
      // is tried again below (safe: its dedupe key makes a retry a no-op if it did land).
      this.cursor = tick;
      this.retryMs = RETRY_MIN_MS;
    } catch (err) {
      this.logger.error({ err, task: this.task.name, tick: new Date(tick).toISOString() }, `could not queue a cron tick; retrying in ${this.retryMs} ms`);
      const wait = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      return this.arm(wait);
    }
    // Re-arm last, one tick at a time: ticks missed while the process was stalled are
    // then queued in order, each once, and an error above can never skip a tick.
    this.arm();
  }
}
