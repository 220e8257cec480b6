import { EventEmitter } from 'node:events';
import type { RunRecord, RunStatus } from './types.js';

/**
 * What the daemon tells in-process listeners (tests, the HTTP layer's live views). Typed so
 * a listener cannot misspell an event; emitted safely so a throwing listener cannot break
 * a run.
 */
export interface RunletEventMap {
  'run:queued': { runId: string; task: string; trigger: string };
  'run:skipped': { runId: string; task: string; reason: string };
  /** `queuedAt`: when the run (or, for a retry, this attempt) became due: createdAt or retryAt. */
  'run:started': { runId: string; task: string; containerId: string; startedAt?: number; queuedAt?: number };
  'run:finished': { runId: string; task: string; status: RunStatus; record?: RunRecord };
  /** An attempt ended in `status` and the run is queued again for `nextAttempt`, due in `delayMs`. */
  'run:retrying': { runId: string; task: string; status: RunStatus; attempt: number; nextAttempt: number; delayMs: number };
  'cron:tick': { task: string; tickMs: number; runId: string; created: boolean };
  'daemon:ready': { url?: string };
  /** An alert reached its receiver (2xx) after `attempts` tries. `rule` is its index under alerts:. */
  'alert:sent': { rule: number; event: string; task: string; runId?: string; attempts: number };
  /** An alert was given up: every attempt failed, or it was dropped from a full queue (attempts 0). */
  'alert:failed': { rule: number; event: string; task: string; runId?: string; attempts: number; error: string };
  /**
   * A trigger's event reached runlet: `accepted` made a run (or a skipped record),
   * `duplicate` named a run its dedupe key already had, `rejected` made nothing (`reason`:
   * bad_signature, too_large, rate_limited, unknown_task, ...).
   */
  'trigger:event': { task: string; trigger: string; outcome: 'accepted' | 'duplicate' | 'rejected'; reason?: string };
  /** Start-up catch-up found `ticks` missed while no daemon ran: one run stands for them, or a skipped record. */
  'cron:missed': { task: string; ticks: number; runId: string; caughtUp: boolean };
  /** This node held a task's runs back: `reason` is admission's sentence (pool concurrency, pool or node memory). */
  'admission:refused': { task: string; pool: string; reason: string };
  /** A warm or reusable instance's container time with no run in it, as it was used or retired: usage reports it apart. */
  'warm:idle': { task: string; idleMs: number };
}

export class RunletEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  on<K extends keyof RunletEventMap>(event: K, listener: (payload: RunletEventMap[K]) => void): () => void {
    this.emitter.on(event, listener);
    return () => this.emitter.off(event, listener);
  }

  emit<K extends keyof RunletEventMap>(event: K, payload: RunletEventMap[K]): void {
    for (const l of this.emitter.listeners(event)) {
      try {
        (l as (p: RunletEventMap[K]) => void)(payload);
      } catch {
        // A listener's bug is its own; the run goes on.
      }
    }
  }

  /** Resolves with the first event that matches, for tests that await instead of sleeping. */
  once<K extends keyof RunletEventMap>(
    event: K,
    match: (p: RunletEventMap[K]) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<RunletEventMap[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${event}`));
      }, timeoutMs);
      const off = this.on(event, (p) => {
        if (!match(p)) return;
        clearTimeout(timer);
        off();
        resolve(p);
      });
    });
  }
}
