import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunletConfig } from '../config/types.js';
import type { RunletEvents } from './events.js';
import type { RunRecord } from './types.js';

/** A task's runs in progress, cluster-wide (dispatch/gate.ts keeps them in Redis). */
export interface QueueState {
  /** Runs starting or running. */
  readonly active: number;
  /** Runs queued: waiting for a node, for a slot of the task, or between attempts. */
  readonly waiting: number;
}

export interface MetricsOptions {
  readonly config?: RunletConfig;
  /** Reads the tasks' counts from Redis (tasks absent have none); enables the cluster-wide gauges. */
  readonly queueStates?: () => Promise<ReadonlyMap<string, QueueState>>;
}

/** 0.1 s to 1 h: a 2-second sync and a 45-minute archive both land in a useful bucket. */
export const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];
/** Waits are mostly short (a free worker picks a run up in milliseconds), long ones matter. */
export const QUEUE_WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

const GIB = 2 ** 30;
const PROCESS_PREFIX = 'runlet_process_';
/** How often the event loop's lag is sampled (ms). */
const EVENT_LOOP_SAMPLE_MS = 500;

/**
 * prom-client's default metrics that break the naming conventions: gauges named `_total`
 * (promtool: "non-counter metrics should not have _total suffix"). Each is the sum of its
 * by-type gauge (`nodejs_active_handles` and so on), which stays: nothing is lost.
 */
const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * Prometheus metrics, fed by the daemon's typed events. Counters and histograms count what
 * happened in this process, as Prometheus expects: sum them over the daemons of a cluster.
 * The two gauges of queue state are read from Redis at scrape time and are cluster-wide:
 * every daemon reports the same value, so aggregate them with max(), never sum().
 */
export class RunletMetrics {
  readonly registry = new Registry();
  private readonly finished = new Counter({
    name: 'runlet_runs_finished_total',
    help: 'Runs that ended, by task and status (skipped runs included).',
    labelNames: ['task', 'status'] as const,
    registers: [this.registry],
  });
  private readonly skipped = new Counter({
    name: 'runlet_runs_skipped_total',
    help: 'Runs recorded as skipped instead of run, by task and reason: a skip is never silent.',
    labelNames: ['task', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'runlet_run_duration_seconds',
    help: "Container run time of the attempt that decided a run's status (start to exit), by task and status.",
    labelNames: ['task', 'status'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly queueWait = new Histogram({
    name: 'runlet_run_queue_wait_seconds',
    help: "From a run being due (created, or a retry's retryAt) to its container starting, by task. Includes cron jitter.",
    labelNames: ['task'] as const,
    buckets: QUEUE_WAIT_BUCKETS,
    registers: [this.registry],
  });
  private readonly containerSeconds = new Counter({
    name: 'runlet_container_seconds_total',
    help: 'Seconds containers ran, by task (every attempt of a run, counted when the run ends).',
    labelNames: ['task'] as const,
    registers: [this.registry],
  });
  private readonly warmIdleSeconds = new Counter({
    name: 'runlet_warm_idle_seconds_total',
    help: 'Seconds warm and reusable instances ran with no run in them, by task (the price of their latency, apart from runlet_container_seconds_total; counted when an instance is used or retired).',
    labelNames: ['task'] as const,
    registers: [this.registry],
  });
  // Base units, as Prometheus names them: bytes × seconds, not the GB-seconds of the JSON
  // API's usage.gbSeconds (divide by 2^30 for those). promtool flags "gb" as an abbreviation.
  private readonly memoryLimitByteSeconds = new Counter({
    name: 'runlet_memory_limit_byte_seconds_total',
    help: 'Memory limit in bytes times seconds run, by task (every attempt of a run, counted when the run ends; divided by 2^30 it is the GB-seconds AWS Lambda counts).',
    labelNames: ['task'] as const,
    registers: [this.registry],
  });
  private readonly admissionWaits = new Counter({
    name: 'runlet_admission_waits_total',
    help: "Times this node stopped taking a task's runs, or handed a fetched run back, because a limit was full: reason pool_concurrency, pool_memory or node_memory.",
    labelNames: ['task', 'pool', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly triggerEvents = new Counter({
    name: 'runlet_trigger_events_total',
    help: 'Trigger events received, by task, trigger and outcome: accepted (made a run or a skipped record), duplicate (its dedupe key had a run), rejected.',
    labelNames: ['task', 'trigger', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly triggerRejections = new Counter({
    name: 'runlet_trigger_rejections_total',
    help: 'Trigger events rejected before a run was made, by task, trigger and reason (bad_signature, too_large, rate_limited, unknown_task, ...).',
    labelNames: ['task', 'trigger', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly cronMissed = new Counter({
    name: 'runlet_cron_missed_ticks_total',
    help: 'Cron ticks missed while no daemon ran, found by catch-up at start-up, by task and outcome: caught_up (one run stood for them) or skipped (outside catchup).',
    labelNames: ['task', 'outcome'] as const,
    registers: [this.registry],
  });

  private state?: Promise<Map<string, QueueState>>;

  constructor(
    events: RunletEvents,
    private readonly opts: MetricsOptions = {},
  ) {
    // The event-loop lag is sampled every 500 ms, not prom-client's 10: each sample wakes the
    // loop, and at 10 ms its timer alone kept an idle daemon at 0.4 % of a core; at 100 ms it was
    // still four wake-ups in five (bench/README.md, daemon cost). Two samples a second catch
    // every stall of half a second or more, the ones worth alerting on, and shorter ones often.
    collectDefaultMetrics({ register: this.registry, prefix: PROCESS_PREFIX, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    for (const name of MISNAMED_DEFAULT_METRICS) this.registry.removeSingleMetric(PROCESS_PREFIX + name);
    this.clusterGauges();
    events.on('run:finished', (e) => {
      this.finished.inc({ task: e.task, status: e.status });
      if (e.record) this.ended(e.record);
    });
    events.on('run:skipped', (e) => this.skipped.inc({ task: e.task, reason: skipKind(e.reason) }));
    events.on('run:started', (e) => {
      if (e.queuedAt !== undefined && e.startedAt !== undefined)
        this.queueWait.observe({ task: e.task }, Math.max(0, e.startedAt - e.queuedAt) / 1000);
    });
    events.on('warm:idle', (e) => this.warmIdleSeconds.inc({ task: e.task }, e.idleMs / 1000));
    events.on('admission:refused', (e) => this.admissionWaits.inc({ task: e.task, pool: e.pool, reason: admissionKind(e.reason) }));
    events.on('trigger:event', (e) => {
      const task = this.knownTask(e.task);
      this.triggerEvents.inc({ task, trigger: e.trigger, outcome: e.outcome });
      if (e.outcome === 'rejected') this.triggerRejections.inc({ task, trigger: e.trigger, reason: e.reason ?? 'other' });
    });
    events.on('cron:missed', (e) => this.cronMissed.inc({ task: e.task, outcome: e.caughtUp ? 'caught_up' : 'skipped' }, e.ticks));
  }

  private ended(record: RunRecord): void {
    if (record.usage) {
      this.containerSeconds.inc({ task: record.task }, record.usage.containerSeconds);
      this.memoryLimitByteSeconds.inc({ task: record.task }, record.usage.gbSeconds * GIB);
    }
    const last = record.attempts.at(-1);
    const startedAt = last?.startedAt ?? record.startedAt;
    const finishedAt = last?.finishedAt ?? record.finishedAt;
    // A run that never started a container has no run time to observe.
    if (startedAt !== undefined && finishedAt !== undefined && finishedAt >= startedAt) {
      this.duration.observe({ task: record.task, status: record.status }, (finishedAt - startedAt) / 1000);
    }
  }

  /**
   * A rejected request may name any task (an unknown webhook path): labels would grow
   * without bound, so names that are not configured share one label value.
   */
  private knownTask(task: string): string {
    if (!this.opts.config) return task;
    return this.opts.config.tasks[task] ? task : '(unknown)';
  }

  /**
   * runlet_runs_running / runlet_runs_queued: read from the task gate at scrape time (the
   * statuses of the runs in progress) rather than kept from events, because this process
   * sees only its own runs' events while the gate holds the whole cluster's.
   */
  private clusterGauges(): void {
    const { config, queueStates } = this.opts;
    if (!config || !queueStates) return;
    // Both gauges are collected in the same scrape, at once: they share the read in flight.
    const read = (): Promise<Map<string, QueueState>> => {
      if (this.state) return this.state;
      // Every configured task gets a sample (0 when it has no runs in progress).
      const value = queueStates().then(
        (known) => new Map(Object.keys(config.tasks).map((t) => [t, known.get(t) ?? { active: 0, waiting: 0 }] as const)),
      );
      this.state = value;
      void value.finally(() => (this.state = undefined)).catch(() => undefined);
      return value;
    };
    const gauge = (name: string, help: string, pick: (s: QueueState) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['task', 'pool'] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          // Redis unreachable: no sample beats a stale one (the scrape still answers).
          const states = await read().catch(() => undefined);
          if (!states) return;
          for (const [task, s] of states) this.set({ task, pool: config.tasks[task]?.pool ?? 'default' }, pick(s));
        },
      });
    gauge(
      'runlet_runs_running',
      'Runs starting or running now, cluster-wide, by task and its pool (the same on every daemon: use max, not sum).',
      (s) => s.active,
    );
    gauge(
      'runlet_runs_queued',
      'Runs queued now (waiting, delayed by jitter or a retry backoff, or held by a full limit), cluster-wide, by task and pool (use max, not sum).',
      (s) => s.waiting,
    );
  }
}

/** A skip reason is a sentence; a label needs one of a few values. */
export function skipKind(reason: string): string {
  if (reason.startsWith('overlap bufferOne')) return 'overlap_buffer_one';
  if (reason.startsWith('overlap skip')) return 'overlap_skip';
  if (reason.startsWith('queue full')) return 'queue_full';
  if (reason.startsWith('task is paused')) return 'paused';
  if (reason.startsWith('task is suspended')) return 'suspended';
  if (reason.startsWith('catch-up window passed')) return 'catchup_window_passed';
  return 'other';
}

/** Admission's sentences (dispatch/admission.ts whyNot) as label values. */
export function admissionKind(reason: string): string {
  if (reason.startsWith('pool ') && reason.includes('concurrency')) return 'pool_concurrency';
  if (reason.startsWith('pool ') && reason.includes('memory')) return 'pool_memory';
  if (reason.startsWith('the node ')) return 'node_memory';
  return 'other';
}
