import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { keys } from './keys.js';

/** One GET every this often: cheap, and short enough that what was lost is back within seconds. */
export const EPOCH_CHECK_MS = 2_000;

/**
 * Notices a Redis that came back empty and puts back what this daemon set only once.
 *
 * Most of runlet's state is rewritten as it is used (heartbeats, run records, queue jobs),
 * but a few things are written at start and then trusted: the cluster id, each task's
 * global concurrency, the ended-runs consumer groups. A flush, a failover to an empty
 * replica or a restart without the append-only file removes them silently, and without
 * them the task limits are gone and chaining and alerts stop for good. So a marker key is
 * written at start; when it is missing, whatever registered with `onEmpty` is asserted
 * again, from what this daemon still holds in memory.
 */
export class RedisEpoch {
  private readonly reasserts: Array<{ what: string; run: () => Promise<unknown> }> = [];
  private checking?: Promise<boolean>;
  private timer?: NodeJS.Timeout;
  private reported = false;

  constructor(
    private readonly redis: Redis,
    private readonly clusterId: string,
    private readonly logger: Logger,
  ) {}

  /** Writes the marker; at start, once the cluster id is known. */
  async mark(): Promise<void> {
    await this.redis.set(keys.alive(), this.clusterId);
  }

  /** Something to set again after Redis came back empty; must be idempotent (every daemon runs it). */
  onEmpty(what: string, run: () => Promise<unknown>): void {
    this.reasserts.push({ what, run });
  }

  /**
   * True when the marker was missing (and what was lost has been asserted again). One check
   * at a time: a NOGROUP seen while the timer's check runs joins it, so one emptying is
   * logged once by this daemon.
   */
  check(): Promise<boolean> {
    this.checking ??= this.checkOnce().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOnce(): Promise<boolean> {
    if ((await this.redis.exists(keys.alive())) === 1) {
      this.reported = false;
      return false;
    }
    // Once per emptying, though a failed step below leaves the marker missing for the next check to retry.
    if (!this.reported)
      this.logger.error(
        { clusterId: this.clusterId },
        'redis came back empty (flushed, failed over to an empty replica, or restarted without its append-only file): setting again the cluster id, task concurrency limits, ended-runs consumer groups and paused tasks, and recording again the runs in progress from their containers; queued runs and jobs of before are lost',
      );
    // NX, with the id this daemon already has: the containers it and its peers started carry
    // it as a label, and a new random id (a restarted daemon's clusterIdOf) would orphan them.
    await this.redis.set(keys.clusterId(), this.clusterId, 'NX');
    this.reported = true;
    let failed = false;
    for (const r of this.reasserts)
      await r.run().catch((err) => {
        failed = true;
        this.logger.error({ err, what: r.what }, 'could not set again after redis came back empty; retrying at the next check');
      });
    // Last, and only when all is back: should a step fail or this daemon die part-way, the
    // marker is still missing and the next check (this daemon's or a peer's) does it all again.
    if (!failed) await this.mark();
    return true;
  }

  /** Checks every `everyMs` until stopped. */
  start(everyMs = EPOCH_CHECK_MS): () => Promise<void> {
    this.timer = setInterval(
      () => void this.check().catch((err) => this.logger.warn({ err }, 'could not check whether redis came back empty')),
      everyMs,
    );
    this.timer.unref();
    return async () => {
      clearInterval(this.timer);
      await this.checking?.catch(() => undefined);
    };
  }
}
