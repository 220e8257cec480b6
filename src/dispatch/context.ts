import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RunletConfig } from '../config/types.js';
import type { RunletEvents } from '../runs/events.js';
import type { RunStore } from '../runs/store.js';
import type { Runtime } from '../runtime/types.js';
import type { Identity } from './identity.js';
import type { TaskGate } from './gate.js';
import type { PoolQueues } from './queues.js';

/** An attempt this process runs or has adopted: its container is waited on here. */
export interface ActiveRun {
  readonly done: Promise<void>;
  readonly cancel: AbortController;
  /** The attempt the container runs, and the claim this process holds on it. */
  readonly attempt: number;
  readonly claim: string;
}

/** What dispatch's functions share: one per daemon. */
export interface RunContext {
  readonly config: RunletConfig;
  readonly store: RunStore;
  readonly runtime: Runtime;
  readonly redis: Redis;
  readonly identity: Identity;
  readonly events: RunletEvents;
  readonly logger: Logger;
  /** For the delayed job of a retried run's next attempt (retries.ts). */
  readonly queues: PoolQueues;
  /** Each task's cluster-wide slots: the reconciler sweeps what no end freed. */
  readonly gate: TaskGate;
  /** Runs this process is executing or has adopted, so a redelivered job joins, not repeats. */
  readonly active: Map<string, ActiveRun>;
  /**
   * The lease period: a queue job's lock and a daemon's heartbeat both lapse after this long
   * without renewal (RUNLET_STALLED_MS, default 30 s), and the claim watch and the reconciler
   * look this often (a third of it, and all of it).
   */
  readonly leaseMs: number;
  /** Aborted when the daemon stops: a job that only watches a run gives it up then. */
  readonly stopping: AbortSignal;
}

/** The queue job a run is processed under, as the worker hands it over. */
export interface JobHandle {
  readonly id?: string;
  /**
   * Says that this job runs nothing on this node (it watches a run held elsewhere): its room
   * in the node's admission is given back, and a graceful stop does not wait for it.
   */
  readonly release?: () => void;
}
