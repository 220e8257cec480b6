import type { Registry } from 'prom-client';
import type { ConfigChanges } from '../config/diff.js';
import type { RunletConfig } from '../config/types.js';
import type { BackfillResult } from '../dispatch/backfill.js';
import type { Redis } from 'ioredis';
import type { Enqueued } from '../dispatch/enqueue.js';
import type { RunletEvents } from '../runs/events.js';
import type { HostPolicy } from './hosts.js';
import type { ApiTokens } from './auth.js';
import type { ChangeFeed } from './live.js';
import type { EndedRuns } from '../runs/ended.js';
import type { RunReader } from '../runs/store.js';
import type { NodeView } from '../ops/nodes.js';
import type { StuckItem } from '../ops/stuck.js';
import type { RunRecord, RunRequest } from '../runs/types.js';

/**
 * What the HTTP layer may do: read run records and the config, ask for runs to be queued
 * or cancelled, and reset a change stream. It never talks to Docker, never writes a run
 * record, and changes a trigger's state only through the functions here.
 */
export interface HttpDeps {
  readonly config: RunletConfig;
  readonly store: RunReader;
  readonly token?: string;
  /** Every token and its role (RUNLET_TOKEN and RUNLET_TOKENS_FILE); without it, `token` alone, as admin. */
  readonly tokens?: ApiTokens;
  /** The Host names the daemon answers to (hosts.ts); without it, the loopback names only. */
  readonly hosts?: HostPolicy;
  /** Prometheus registry served at /metrics. */
  readonly metrics?: Registry;
  /** Trigger events for metrics (webhook refusals by reason). */
  readonly events?: RunletEvents;
  /** runlet's own Redis (webhook rate limits). */
  readonly redis: Redis;
  /** Run changes of the whole cluster, for GET /api/events; without it the route is absent. */
  readonly changes?: ChangeFeed;
  /** Wait for a run to end (respond: result). */
  readonly ended: EndedRuns;
  /** The one way in for every trigger: dedupe claim, policies, durable record, queue job. */
  submit(request: RunRequest): Promise<Enqueued>;
  /** A manual run; with `idempotencyKey`, a repeated request answers with the first run (created: false). */
  submitManual(task: string, payload: unknown, idempotencyKey?: string): Promise<{ runId: string; created: boolean }>;
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
  /** Every node, live and recently gone (ops/nodes.ts). */
  nodes(): Promise<NodeView[]>;
  /** What is stuck now (ops/stuck.ts). */
  stuck(now?: number): Promise<StuckItem[]>;
  /** Forgets a change stream's resume token (the operator's way out of history lost); returns the new fence. */
  resetStream(task: string): Promise<number>;
  /**
   * Reads the config file again and applies it (POST /api/reload). Throws ConfigError when
   * the file has errors (nothing changed); without it the route is absent.
   */
  reload?(): Promise<ConfigChanges>;
}
