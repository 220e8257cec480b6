import type { Registry } from 'prom-client';
import type { RunletConfig } from '../config/types.js';
import type { BackfillResult } from '../dispatch/backfill.js';
import type { RunStore } from '../runs/store.js';
import type { RunRecord } from '../runs/types.js';

/**
 * What the HTTP layer may do: read run records and the config, and ask for runs to be
 * queued or cancelled. It never talks to Docker or to a trigger.
 */
export interface HttpDeps {
  readonly config: RunletConfig;
  readonly store: RunStore;
  readonly token?: string;
  /** Prometheus registry served at /metrics. */
  readonly metrics?: Registry;
  submitManual(task: string, payload: unknown): Promise<{ runId: string; created: boolean }>;
  cancelRun(runId: string): Promise<{ status: string; accepted: boolean }>;
  /** Queues a new manual run of an ended run's task with its payload (`retryOf` names the old run). */
  retryRun(run: RunRecord): Promise<{ runId: string }>;
  nextFireTimes(task: string, n: number): number[];
  pause(task: string): Promise<void>;
  resume(task: string): Promise<void>;
  pausedTasks(): Promise<Set<string>>;
  /** Throws BackfillRangeError for a range it will not run. */
  backfill(task: string, fromMs: number, toMs: number): Promise<BackfillResult>;
  health(): Promise<Record<string, { ok: boolean; detail?: string }>>;
  status(): Promise<Record<string, unknown>>;
}
