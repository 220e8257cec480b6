import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunletEvents } from '../lib/events.js';

/**
 * Prometheus metrics, fed by the daemon's run events. Counters are per process, as
 * Prometheus expects: sum them over the daemons of a cluster.
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

  constructor(events: RunletEvents) {
    collectDefaultMetrics({ register: this.registry, prefix: 'runlet_process_' });
    events.on('run:finished', (e) => this.finished.inc({ task: e.task, status: e.status }));
    events.on('run:skipped', (e) => this.skipped.inc({ task: e.task, reason: skipKind(e.reason) }));
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
