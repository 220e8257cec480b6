import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RunletConfig } from '../config/types.js';
import type { Enqueued } from '../dispatch/enqueue.js';
import type { Identity } from '../dispatch/identity.js';
import type { RedisTarget } from '../lib/redis.js';
import type { EndedRuns } from '../runs/ended.js';
import type { RedisEpoch } from '../runs/epoch.js';
import type { RunReader } from '../runs/store.js';
import type { RunRequest } from '../runs/types.js';

/**
 * What a trigger gets. A trigger turns outside events into RunRequests and hands
 * them to `submit`; it never talks to Docker, and never writes run records itself.
 */
export interface TriggerDeps {
  readonly config: RunletConfig;
  /**
   * The one way in: dedupe claim, policies, durable record, queue job. `cronMarker` also
   * advances the task's last-tick marker in the same script; `skipReason` records the run
   * as skipped (a catch-up outside its window).
   */
  submit(request: RunRequest, opts?: { cronMarker?: boolean; skipReason?: string }): Promise<Enqueued>;
  /** Wait for any run to end, whichever daemon runs it. */
  readonly ended: EndedRuns;
  readonly store: RunReader;
  /** runlet's own Redis (for leases, cursors, trigger state). */
  readonly redis: Redis;
  readonly redisTarget: RedisTarget;
  readonly identity: Identity;
  readonly logger: Logger;
  /** The daemon's queue lock (RUNLET_STALLED_MS): triggers holding outside queue jobs use it too. */
  readonly stalledMs?: number;
  /** Puts back what a trigger set once (the chaining consumer group) when Redis comes back empty. */
  readonly epoch?: RedisEpoch;
  /**
   * The newest entry of the ended-runs stream when this daemon started: a consumer group it
   * creates reads from there, so the runs it settled at start-up are read too (default '$').
   */
  readonly endedFrom?: string;
}

/** A long-lived trigger a daemon starts after everything else and stops first. */
export interface Trigger {
  /** For logs and the ops API: "queue bids → bid-placed". */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
